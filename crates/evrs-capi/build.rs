//! Compiles the implementation's C helpers (formatting from a `va_list`, which needs
//! `va_copy`, not expressible in stable Rust; the addresses of the exported data symbols,
//! taken through the GOT) and gives the library its SONAME.

fn main() {
    println!("cargo:rerun-if-changed=csrc/varargs.c");
    println!("cargo:rerun-if-changed=csrc/globals.c");
    cc::Build::new()
        .file("csrc/varargs.c")
        .file("csrc/globals.c")
        .pic(true)
        .warnings(true)
        .compile("evrs_capi_varargs");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libevrs_capi.so");
}
