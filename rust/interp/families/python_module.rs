//! Python modules (`math`, `torch.nn.functional`, user modules): attributes read through
//! the module's dict with guards; a module is not callable.

use super::python_object::python_object_verbs;
use super::Family;

pub struct PythonModule;

impl Family for PythonModule {
    fn name(&self) -> &'static str {
        "module"
    }

    python_object_verbs!(
        getattr,
        setattr,
        call_method,
        truthy,
        python_type,
        as_constant,
        call,
        reconstruct
    );
}
