//! Our headers against libevent 2.1.12's ABI facts: every struct layout and constant
//! (`check_layout.sh` of the shared ABI reference) and every function prototype
//! (`include/check_prototypes.sh`, against Debian's installed headers).

use std::path::Path;
use std::process::Command;

mod util;

fn reference() -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/abi");
    if p.join("check_layout.sh").exists() {
        Some(p)
    } else {
        eprintln!("skipped: the shared ABI reference is not beside the repository");
        None
    }
}

#[test]
fn struct_layouts_and_constants_match_libevent() {
    let Some(r) = reference() else { return };
    let inc = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let out = Command::new("bash")
        .arg(r.join("check_layout.sh"))
        .args(["--only", "core,compat,config"])
        .arg(&inc)
        .output()
        .expect("run check_layout.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("RESULT: OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_prototype_matches_libevent() {
    let Some(r) = reference() else { return };
    if !util::have_debian_libevent() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/check_prototypes.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("/usr/include")
        .arg(r.join("symbols"))
        .output()
        .expect("run check_prototypes.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(" 0 differences"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
