//! Finding other CPython interpreters for tests that compare against them in a subprocess.

use std::path::PathBuf;
use std::process::Command;

use super::opcodes::PyVersion;

/// An interpreter for `version`: `$FERRODYN_PYTHON_3_12` (etc.), the venv `./dev.sh` keeps for
/// that version (`~/.cache/ferrodyn-venv-3.12`, which has torch, so torch's own modules are
/// round-tripped too), a pyenv install, or `python3.12` on PATH, whichever runs first.
pub fn interpreter(version: PyVersion) -> Option<PathBuf> {
    let (major, minor) = version.numbers();
    let exe = format!("python{major}.{minor}");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var(format!("FERRODYN_PYTHON_{major}_{minor}")) {
        candidates.push(p.into());
    }
    if let Ok(home) = std::env::var("HOME") {
        let venv = if (major, minor) == (3, 11) {
            "ferrodyn-venv".to_string()
        } else {
            format!("ferrodyn-venv-{major}.{minor}")
        };
        candidates.push(
            PathBuf::from(home)
                .join(".cache")
                .join(venv)
                .join("bin")
                .join("python"),
        );
    }
    let pyenv = std::env::var("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Ok(Ok(dir)) = pyenv.map(|r| std::fs::read_dir(r.join("versions"))) {
        let mut found: Vec<PathBuf> = dir
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix(&format!("{major}.{minor}."))
                    .is_some_and(|patch| patch.chars().all(|c| c.is_ascii_digit()))
            })
            .map(|e| e.path().join("bin").join(&exe))
            .collect();
        found.sort();
        candidates.extend(found);
    }
    candidates.push(exe.into());
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import sys; print(sys.version_info[:2])"])
            .output()
            .is_ok_and(|o| {
                o.status.success()
                    && String::from_utf8_lossy(&o.stdout).trim() == format!("({major}, {minor})")
            })
    })
}
