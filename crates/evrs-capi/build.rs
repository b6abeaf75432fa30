//! Compiles the implementation's one C helper (formatting from a `va_list`, which needs
//! `va_copy`: not expressible in stable Rust) and gives the library its SONAME.

fn main() {
    println!("cargo:rerun-if-changed=csrc/varargs.c");
    cc::Build::new()
        .file("csrc/varargs.c")
        .warnings(true)
        .compile("evrs_capi_varargs");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libevrs_capi.so");
}
