//! Tty tests on a pseudo-terminal: window size, modes, writing and reading through the slave, and
//! `guess_handle`. Terminal modes are process-global in libuv, so these tests run one at a time.
#![cfg(unix)]
mod common;

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Mutex;

use common::{close_clean, run_until, TempDir};
use uvio::uv::{guess_handle, reset_mode, GuessedHandle, Handle, Loop, Tty, TtyMode};
use uvio::Error;

static_assertions::assert_not_impl_any!(Tty: Send, Sync);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A new pseudo-terminal: (master, slave). Call with the `SERIAL` lock held (`ptsname` is not reentrant).
fn open_pty() -> (File, OwnedFd) {
    // SAFETY: plain libc calls on descriptors we create and own; ptsname's static buffer is copied out at
    // once, under the test lock.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0, "posix_openpt failed");
        let master = File::from(OwnedFd::from_raw_fd(m));
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_owned();
        let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(s >= 0, "opening the pty slave failed");
        (master, OwnedFd::from_raw_fd(s))
    }
}

fn set_winsize(master: &File, cols: u16, rows: u16) {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize struct from the pointer.
    assert_eq!(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) }, 0);
}

/// Whether the terminal behind `master` is in canonical (line-buffered) mode.
fn canonical(master: &File) -> bool {
    // SAFETY: tcgetattr fills the zeroed termios struct.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(master.as_raw_fd(), &mut t), 0);
        t.c_lflag & libc::ICANON != 0
    }
}

fn read_exactly(master: &mut File, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    master.read_exact(&mut got).unwrap();
    got
}

#[test]
fn winsize_follows_the_master() {
    let _g = serial();
    let lp = Loop::new().unwrap();
    let (master, slave) = open_pty();
    set_winsize(&master, 80, 24);
    let tty = Tty::from_fd(&lp, slave).unwrap();
    assert_eq!(tty.winsize().unwrap(), (80, 24));
    set_winsize(&master, 132, 50);
    assert_eq!(tty.winsize().unwrap(), (132, 50));
    drop(tty);
    close_clean(lp);
}

#[test]
fn raw_mode_then_reset() {
    let _g = serial();
    let lp = Loop::new().unwrap();
    let (master, slave) = open_pty();
    let tty = Tty::from_fd(&lp, slave).unwrap();
    assert!(canonical(&master));
    tty.set_mode(TtyMode::Raw).unwrap();
    assert!(!canonical(&master));
    // reset_mode restores the terminal that was first switched out of normal mode: this one.
    reset_mode().unwrap();
    assert!(canonical(&master));
    tty.set_mode(TtyMode::Io).unwrap();
    assert!(!canonical(&master));
    tty.set_mode(TtyMode::Normal).unwrap();
    assert!(canonical(&master));
    tty.set_mode(TtyMode::Raw).unwrap();
    drop(tty);
    close_clean(lp);
    // Closing a tty that changed modes restores it too.
    assert!(canonical(&master));
    reset_mode().unwrap(); // nothing left to restore: still fine
}

#[test]
fn write_through_the_tty_reaches_the_master() {
    let _g = serial();
    let lp = Loop::new().unwrap();
    let (mut master, slave) = open_pty();
    let tty = Tty::from_fd(&lp, slave).unwrap();
    assert!(tty.is_writable() && tty.is_readable());
    // Raw mode keeps output processing: "\n" reaches the master as "\r\n".
    tty.set_mode(TtyMode::Raw).unwrap();
    let done = Rc::new(Cell::new(None));
    let d2 = done.clone();
    tty.write(&b"line\n"[..], move |_, res| d2.set(Some(res))).unwrap();
    run_until(&lp, || done.get().is_some());
    assert_eq!(read_exactly(&mut master, 6), b"line\r\n");
    // Io mode is binary-safe both ways.
    tty.set_mode(TtyMode::Io).unwrap();
    let payload: Vec<u8> = b"hello tty\n\x00\x01\xfe\xff".iter().copied().chain(0..=255u8).collect();
    let done = Rc::new(Cell::new(None));
    let d2 = done.clone();
    tty.write(payload.clone(), move |_, res| d2.set(Some(res))).unwrap();
    run_until(&lp, || done.get().is_some());
    assert_eq!(done.get(), Some(Ok(())));
    assert_eq!(read_exactly(&mut master, payload.len()), payload);
    drop(tty);
    close_clean(lp);
}

#[test]
fn read_from_the_tty_in_raw_mode() {
    let _g = serial();
    let lp = Loop::new().unwrap();
    let (mut master, slave) = open_pty();
    let tty = Tty::from_fd(&lp, slave).unwrap();
    tty.set_mode(TtyMode::Raw).unwrap();
    // Raw: no line buffering, no echo, control characters are plain bytes.
    let typed = b"ab\x03\x04\x7f\r\nz".to_vec();
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let g2 = got.clone();
    tty.read_start(move |_, data| g2.borrow_mut().extend_from_slice(data.unwrap())).unwrap();
    master.write_all(&typed).unwrap();
    run_until(&lp, || got.borrow().len() >= typed.len());
    assert_eq!(*got.borrow(), typed);
    tty.read_stop().unwrap();
    drop(tty);
    close_clean(lp);
}

#[test]
fn drop_in_own_read_callback_and_misuse() {
    let _g = serial();
    let lp = Loop::new().unwrap();
    let (mut master, slave) = open_pty();
    let tty = Tty::from_fd(&lp, slave).unwrap();
    tty.set_mode(TtyMode::Raw).unwrap();
    // A terminal neither listens nor accepts.
    assert_eq!(tty.accept().unwrap_err(), Error::ENOTSUP);
    assert_eq!(tty.listen(1, |_, _| {}).unwrap_err(), Error::EINVAL);
    let slot = Rc::new(RefCell::new(Some(tty)));
    let s2 = slot.clone();
    let seen = Rc::new(Cell::new(false));
    let seen2 = seen.clone();
    slot.borrow()
        .as_ref()
        .unwrap()
        .read_start(move |t, data| {
            assert_eq!(data.unwrap(), b"q");
            drop(s2.borrow_mut().take());
            assert!(t.is_closing());
            assert_eq!(t.winsize().unwrap_err(), Error::EINVAL);
            assert_eq!(t.set_mode(TtyMode::Normal).unwrap_err(), Error::EINVAL);
            assert_eq!(t.write(&b"x"[..], |_, _| {}).unwrap_err(), Error::EINVAL);
            seen2.set(true);
        })
        .unwrap();
    master.write_all(b"q").unwrap();
    run_until(&lp, || seen.get());
    close_clean(lp);
    // The closed tty restored its terminal's mode.
    assert!(canonical(&master));
}

#[test]
fn new_accepts_only_standard_descriptors() {
    let _g = serial();
    let lp = Loop::new().unwrap();
    assert_eq!(Tty::new(&lp, 7).unwrap_err(), Error::EINVAL);
    assert_eq!(Tty::new(&lp, -1).unwrap_err(), Error::EINVAL);
    // A regular file is no terminal, whoever owns it.
    let dir = TempDir::new("tty-file");
    let file = File::create(dir.path().join("f")).unwrap();
    assert_eq!(Tty::from_fd(&lp, OwnedFd::from(file)).unwrap_err(), Error::EINVAL);
    close_clean(lp);
}

#[cfg(target_os = "linux")]
#[test]
fn from_fd_does_not_leak_the_given_descriptor() {
    let _g = serial();
    let lp = Loop::new().unwrap();
    let (_master, slave) = open_pty();
    let raw = slave.as_raw_fd();
    let tty = Tty::from_fd(&lp, slave).unwrap();
    // libuv reopened the pty slave under a new descriptor; the one we handed over was closed.
    // SAFETY: F_GETFD only queries the descriptor table.
    assert_eq!(unsafe { libc::fcntl(raw, libc::F_GETFD) }, -1, "descriptor {raw} leaked");
    assert_eq!(tty.winsize().unwrap().0, tty.winsize().unwrap().0); // still usable
    drop(tty);
    close_clean(lp);
}

#[test]
fn guess_handle_kinds() {
    let _g = serial();
    let dir = TempDir::new("tty-guess");
    let file = File::create(dir.path().join("f")).unwrap();
    assert_eq!(guess_handle(file.as_raw_fd()), GuessedHandle::File);
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert_eq!(guess_handle(a.as_raw_fd()), GuessedHandle::Pipe);
    let mut fds = [0; 2];
    // SAFETY: pipe() creates two descriptors that we wrap and own right away.
    let (r, w) = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    assert_eq!(guess_handle(r.as_raw_fd()), GuessedHandle::Pipe);
    assert_eq!(guess_handle(w.as_raw_fd()), GuessedHandle::Pipe);
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(guess_handle(tcp.as_raw_fd()), GuessedHandle::Tcp);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(guess_handle(udp.as_raw_fd()), GuessedHandle::Udp);
    let (_master, slave) = open_pty();
    assert_eq!(guess_handle(slave.as_raw_fd()), GuessedHandle::Tty);
    assert_eq!(guess_handle(-1), GuessedHandle::Unknown);
}
