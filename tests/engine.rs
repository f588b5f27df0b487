//! Engine selection: names, the UVIO_BACKEND override, what a runtime reports.
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

#[test]
fn explicit_libuv_is_honoured_unless_the_environment_overrides() {
    let rt = Builder::new().backend(Backend::Libuv).build().unwrap();
    if Backend::from_env().unwrap().is_none() {
        assert_eq!(rt.backend(), Backend::Libuv);
    }
    rt.close().unwrap();
}
