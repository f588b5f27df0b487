//! dns tests: getaddrinfo/getnameinfo, async and blocking. Only numeric addresses and `localhost` (from
//! /etc/hosts) are looked up, and the failure case uses `AI_NUMERICHOST`, so no packet leaves the machine.
mod common;

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use common::close_clean;
use uvio::uv::{
    getaddrinfo, getaddrinfo_sync, getnameinfo, getnameinfo_sync, AddrInfo, AddrInfoHints, IpFamily, Loop,
    NameInfoFlags, Protocol, RunMode, SockType,
};
use uvio::Error;

type Slot<T> = Rc<RefCell<Option<uvio::Result<T>>>>;

/// Runs one async getaddrinfo to completion and returns its result.
fn resolve(node: Option<&str>, service: Option<&str>, hints: AddrInfoHints) -> uvio::Result<Vec<AddrInfo>> {
    let lp = Loop::new().unwrap();
    let slot: Slot<Vec<AddrInfo>> = Rc::new(RefCell::new(None));
    let s2 = slot.clone();
    getaddrinfo(&lp, node, service, hints, move |res| *s2.borrow_mut() = Some(res)).unwrap();
    lp.run(RunMode::Default).unwrap();
    close_clean(lp);
    let res = slot.borrow_mut().take().expect("callback ran");
    res
}

fn numeric() -> AddrInfoHints {
    AddrInfoHints { numeric_host: true, numeric_serv: true, ..Default::default() }
}

#[test]
fn localhost_resolves_to_loopback() {
    let hints = AddrInfoHints { socktype: Some(SockType::Stream), ..Default::default() };
    let addrs = resolve(Some("localhost"), None, hints).unwrap();
    assert!(!addrs.is_empty());
    for a in &addrs {
        assert!(a.addr.ip().is_loopback(), "{a:?}");
        assert_eq!(a.addr.port(), 0, "no service: port 0");
        assert_eq!(a.socktype, SockType::Stream);
    }
}

#[test]
fn numeric_host_and_service_give_the_port() {
    let addrs = resolve(Some("127.0.0.1"), Some("80"), numeric()).unwrap();
    assert!(!addrs.is_empty());
    for a in &addrs {
        assert_eq!(a.addr, "127.0.0.1:80".parse::<SocketAddr>().unwrap());
        assert_eq!(a.family, IpFamily::V4);
    }
    if cfg!(windows) {
        // No socktype hint: Windows' GetAddrInfoW lists each address once, with the hint's (zero) socket type.
        assert!(addrs.iter().all(|a| a.socktype == SockType::Other(0)), "{addrs:?}");
    } else {
        // No socktype hint: the system lists one entry per socket type, TCP among them.
        assert!(addrs.iter().any(|a| a.socktype == SockType::Stream && a.protocol == Protocol::Tcp), "{addrs:?}");
    }
}

#[test]
fn numeric_ipv6_and_family_filter() {
    let v6 = AddrInfoHints { family: Some(IpFamily::V6), ..numeric() };
    let addrs = resolve(Some("::1"), Some("443"), v6).unwrap();
    assert!(addrs.iter().all(|a| a.family == IpFamily::V6 && a.addr == "[::1]:443".parse().unwrap()));
    // An IPv4 literal asked for as IPv6 only: no such address.
    let err = resolve(Some("127.0.0.1"), None, v6).unwrap_err();
    // Windows may answer with a code libuv does not translate to an EAI_ name (UNKNOWN).
    assert!(err.name().starts_with("EAI_") || cfg!(windows), "{err:?}");
    let v4 = AddrInfoHints { family: Some(IpFamily::V4), ..Default::default() };
    let addrs = resolve(Some("localhost"), None, v4).unwrap();
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| a.family == IpFamily::V4 && a.addr.ip() == IpAddr::from([127, 0, 0, 1])));
}

#[test]
fn socktype_hint_filters_results() {
    let dgram = AddrInfoHints { socktype: Some(SockType::Datagram), ..numeric() };
    let addrs = resolve(Some("127.0.0.1"), Some("53"), dgram).unwrap();
    assert!(!addrs.is_empty());
    // Windows copies the hint's protocol (none) into the results.
    let udp = if cfg!(windows) { Protocol::Other(0) } else { Protocol::Udp };
    assert!(addrs.iter().all(|a| a.socktype == SockType::Datagram && a.protocol == udp), "{addrs:?}");
}

#[test]
fn name_with_numerichost_fails_locally() {
    // AI_NUMERICHOST makes the lookup fail without asking any resolver (RFC 6761's .invalid for good measure).
    let hints = AddrInfoHints { numeric_host: true, ..Default::default() };
    assert_eq!(resolve(Some("nonexistent.invalid"), None, hints).unwrap_err(), Error::EAI_NONAME);
    assert_eq!(getaddrinfo_sync(Some("nonexistent.invalid"), None, hints).unwrap_err(), Error::EAI_NONAME);
}

#[test]
fn bad_input_is_einval_before_anything_starts() {
    let lp = Loop::new().unwrap();
    let cb = |_: uvio::Result<Vec<AddrInfo>>| panic!("must not be called");
    let h = AddrInfoHints::default();
    assert_eq!(getaddrinfo(&lp, Some("local\0host"), None, h, cb).unwrap_err(), Error::EINVAL);
    assert_eq!(getaddrinfo(&lp, Some("localhost"), Some("80\0"), h, cb).unwrap_err(), Error::EINVAL);
    assert_eq!(getaddrinfo(&lp, None, None, h, cb).unwrap_err(), Error::EINVAL);
    assert_eq!(getaddrinfo_sync(Some("a\0b"), None, h).unwrap_err(), Error::EINVAL);
    assert_eq!(getaddrinfo_sync(None, None, h).unwrap_err(), Error::EINVAL);
    assert!(!lp.alive(), "nothing was queued");
    close_clean(lp);
}

#[test]
fn service_alone_with_passive_gives_the_wildcard() {
    let hints = AddrInfoHints { family: Some(IpFamily::V4), passive: true, numeric_serv: true, ..Default::default() };
    let addrs = getaddrinfo_sync(None, Some("8080"), hints).unwrap();
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| a.addr == "0.0.0.0:8080".parse().unwrap()), "{addrs:?}");
}

#[test]
fn getnameinfo_numeric_and_by_name() {
    let lp = Loop::new().unwrap();
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let numeric: Slot<(String, String)> = Rc::new(RefCell::new(None));
    let named: Slot<(String, String)> = Rc::new(RefCell::new(None));
    let (n2, m2) = (numeric.clone(), named.clone());
    let flags = NameInfoFlags { numeric_host: true, numeric_serv: true, ..Default::default() };
    getnameinfo(&lp, addr, flags, move |res| *n2.borrow_mut() = Some(res)).unwrap();
    // Host by name (from /etc/hosts), service numeric: no resolver involved.
    getnameinfo(&lp, addr, NameInfoFlags { numeric_serv: true, ..Default::default() }, move |res| {
        *m2.borrow_mut() = Some(res)
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(numeric.borrow_mut().take().unwrap().unwrap(), ("127.0.0.1".to_string(), "80".to_string()));
    let (host, service) = named.borrow_mut().take().unwrap().unwrap();
    assert!(!host.is_empty());
    assert_eq!(service, "80");
    let v6 = getnameinfo_sync(&lp, "[::1]:8080".parse().unwrap(), flags).unwrap();
    assert_eq!(v6, ("::1".to_string(), "8080".to_string()));
    close_clean(lp);
}

#[test]
fn many_lookups_at_once_all_complete() {
    let lp = Loop::new().unwrap();
    let done = Rc::new(RefCell::new(Vec::new()));
    for port in 1..=20u16 {
        let d = done.clone();
        let service = port.to_string();
        getaddrinfo(&lp, Some("127.0.0.1"), Some(&service), numeric(), move |res| {
            let addrs = res.unwrap();
            d.borrow_mut().push(addrs[0].addr.port());
        })
        .unwrap();
    }
    lp.run(RunMode::Default).unwrap();
    let mut ports = done.borrow().clone();
    ports.sort_unstable();
    assert_eq!(ports, (1..=20).collect::<Vec<u16>>());
    close_clean(lp);
}

#[test]
fn panic_in_callback_resumes_from_run() {
    let lp = Loop::new().unwrap();
    getaddrinfo(&lp, Some("127.0.0.1"), None, numeric(), |_| panic!("boom in dns")).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in dns"));
    close_clean(lp);
}
