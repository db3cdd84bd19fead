mod cache;
mod leaves;
mod skipping;
mod source;
mod tensor;
mod tree;
mod util;
