//! Build decisions for uvio: the custom cfgs are declared here; libuv itself is built (or found) by
//! `libuv-sys2`.
//!
//! With the `system-libuv` feature, this also checks that pkg-config finds a system libuv that libuv-sys2 will
//! really link. libuv-sys2's own build script, when its pkg-config probe fails (no libuv, a version outside its
//! range, a cross build), silently compiles its bundled libuv instead, which would defeat the feature's purpose
//! (one libuv shared with the host). This script fails the build with the version found and the one needed.
//! Without the feature the check does not run.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // `uvio_force_libuv` forces the portable engine so CI can test the fallback (see DESIGN.md).
    println!("cargo::rustc-check-cfg=cfg(uvio_force_libuv)");
    // With `vendored-libuv` on as well, lib.rs's compile_error says what is wrong more plainly than a check of a
    // libuv that would not be linked.
    #[cfg(all(feature = "system-libuv", not(feature = "vendored-libuv")))]
    system_libuv::check();
}

#[cfg(all(feature = "system-libuv", not(feature = "vendored-libuv")))]
mod system_libuv {
    use std::env;

    /// The range of system libuv versions the build accepts: the stricter of two rules.
    /// - libuv's ABI promise (`uv/version.h`): versions with the same major number are ABI stable, and minor
    ///   releases only add API, so the bindings (libuv 1.53's headers) need major 1 and minor >= 53.
    /// - libuv-sys2 1.53.1 asks pkg-config for `>= 1.53.1, < 1.54.0` (its build script's floor is its own crate
    ///   version, not the 1.53.0 it bundles) and builds its bundled copy for anything else.
    ///
    /// Both bounds must follow libuv-sys2 when its version in Cargo.toml changes.
    const MIN: (u32, u32, u32) = (1, 53, 1);
    const MAX_EXCLUSIVE: (u32, u32, u32) = (1, 54, 0);

    pub fn check() {
        // The variables pkg-config (the crate and the tool) reads, so that pointing PKG_CONFIG_PATH at another
        // libuv re-runs the check.
        for var in
            ["PKG_CONFIG", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR", "LIBUV_NO_PKG_CONFIG"]
        {
            println!("cargo::rerun-if-env-changed={var}");
        }
        let needed = format!(">= {} and < {}", dotted(MIN), dotted(MAX_EXCLUSIVE));
        if env::var("TARGET").ok() != env::var("HOST").ok() {
            fail(&format!(
                "this is a cross build ({} on {}): libuv-sys2 never asks pkg-config when cross-compiling and \
                 would link its bundled libuv; build natively, or use the default feature `vendored-libuv`",
                env::var("TARGET").unwrap_or_default(),
                env::var("HOST").unwrap_or_default()
            ));
        }
        // Only the version is wanted here; libuv-sys2's own probe emits the link flags.
        let found =
            pkg_config::Config::new().cargo_metadata(false).env_metadata(false).print_system_libs(false).probe("libuv");
        let library = match found {
            Ok(library) => library,
            Err(err) => fail(&format!(
                "pkg-config found no libuv (libuv {needed} is needed, with its `libuv.pc`; set \
                 PKG_CONFIG_PATH to its directory if it is not in the default search path): {err}"
            )),
        };
        match parse(&library.version) {
            Some(version) if version >= MIN && version < MAX_EXCLUSIVE => {}
            _ => fail(&format!(
                "pkg-config found libuv {}, but libuv {needed} is needed: uvio's bindings are libuv 1.53's, \
                 and libuv-sys2 links a system libuv only in that range (outside it, it would silently \
                 compile its bundled copy). Install libuv 1.53 (>= 1.53.1) and point PKG_CONFIG_PATH at its \
                 `libuv.pc`, or use the default feature `vendored-libuv`",
                library.version
            )),
        }
    }

    fn fail(why: &str) -> ! {
        // Cargo prints a failed build script's stderr; a panic would add a backtrace note that says nothing.
        eprintln!("error: uvio feature `system-libuv`: {why}");
        std::process::exit(1);
    }

    fn dotted((major, minor, patch): (u32, u32, u32)) -> String {
        format!("{major}.{minor}.{patch}")
    }

    /// `"1.53.1"` (and `"1.53"`, `"1.53.1-dev"`) as numbers; `None` for anything else.
    fn parse(version: &str) -> Option<(u32, u32, u32)> {
        let mut parts = version.trim().split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        Some((major, minor, patch))
    }
}
