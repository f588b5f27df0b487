//! Engine selection: names, the UVIO_BACKEND override, what a runtime reports.
mod common;

use uvio::{Backend, Builder};

#[test]
fn names_round_trip() {
    let all = [
        Backend::Auto,
        Backend::Libuv,
        #[cfg(target_os = "linux")]
        Backend::Epoll,
        #[cfg(target_os = "linux")]
        Backend::IoUring,
    ];
    for b in all {
        assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        assert_eq!(b.to_string(), b.name());
    }
    assert_eq!("LIBUV".parse::<Backend>().unwrap(), Backend::Libuv);
    let err = "kqueue".parse::<Backend>().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn runtime_reports_a_resolved_engine() {
    let rt = Builder::new().build().unwrap();
    assert_ne!(rt.backend(), Backend::Auto, "Auto always resolves to a concrete engine");
    if let Some(forced) = Backend::from_env().unwrap() {
        if forced != Backend::Auto {
            assert_eq!(rt.backend(), forced, "UVIO_BACKEND overrides the builder");
        }
    }
    rt.close().unwrap();
}

rt_test! {
    fn an_explicit_engine_is_honoured_unless_the_environment_overrides() {
        let rt = match common::rt::builder(ENGINE).build() {
            Ok(rt) => rt,
            Err(e) if ENGINE == "io_uring" => return eprintln!("io_uring is not available here: {e}"),
            Err(e) => panic!("{ENGINE}: {e}"),
        };
        match Backend::from_env().unwrap() {
            Some(forced) if forced != Backend::Auto => assert_eq!(rt.backend(), forced, "UVIO_BACKEND wins"),
            _ => assert_eq!(rt.backend().name(), ENGINE),
        }
        rt.close().unwrap();
    }
}

/// `UVIO_BACKEND` overrides what the builder asks for: the test above, run again in a child process (the variable
/// is process-wide) with `UVIO_BACKEND=libuv`, where every engine's runtime must come out as libuv.
#[test]
fn the_environment_overrides_the_builder() {
    const TEST: &str = "an_explicit_engine_is_honoured_unless_the_environment_overrides::";
    if Backend::from_env().unwrap().is_some() {
        return; // already forced: the test above checks the override itself
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--test-threads=1"])
        .env("UVIO_BACKEND", "libuv")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the child failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let passed = format!("test result: ok. {} passed", common::rt::ENGINES.len());
    assert!(stdout.contains(&passed), "every engine's test ran in the child:\n{stdout}");
}
