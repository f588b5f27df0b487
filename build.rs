//! Build decisions for uvio: only the custom cfgs are declared here; libuv itself is built by
//! `libuv-sys2` (its bundled source, compiled with `cc`).
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // `uvio_force_libuv` forces the portable engine so CI can test the fallback (see DESIGN.md).
    println!("cargo::rustc-check-cfg=cfg(uvio_force_libuv)");
}
