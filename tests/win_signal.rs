//! Windows console control events: Ctrl+Break and Ctrl+C reach their listeners (libuv's console control
//! handler), and idle listeners do not keep a runtime alive. In a binary of its own: the first test gives the
//! process a console of its own, so the events it generates reach this process only (never the test runner's
//! console and the processes sharing it).
#![cfg(windows)]

use std::ffi::c_void;
use std::time::Duration;

use uvio::signal::ctrl_c;
use uvio::signal::windows::{ctrl_break, ctrl_close};
use uvio::{spawn_local, time, Runtime};

const CTRL_C_EVENT: u32 = 0;
const CTRL_BREAK_EVENT: u32 = 1;

#[link(name = "kernel32")]
extern "system" {
    fn FreeConsole() -> i32;
    fn AllocConsole() -> i32;
    fn GenerateConsoleCtrlEvent(event: u32, process_group: u32) -> i32;
    fn SetConsoleCtrlHandler(handler: Option<unsafe extern "system" fn(u32) -> i32>, add: i32) -> i32;
    fn GetStdHandle(which: u32) -> *mut c_void;
    fn SetStdHandle(which: u32, handle: *mut c_void) -> i32;
}

/// STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE.
const STD_HANDLES: [u32; 3] = [-10i32 as u32, -11i32 as u32, -12i32 as u32];

/// Sends `event` to every process attached to this process's console (group 0): this process alone, after
/// `own_console`.
fn generate(event: u32) {
    // SAFETY: a plain Win32 call with no pointers.
    let ok = unsafe { GenerateConsoleCtrlEvent(event, 0) };
    assert_ne!(ok, 0, "GenerateConsoleCtrlEvent: {}", std::io::Error::last_os_error());
}

/// Detaches from the inherited console (if any) and creates a new one that only this process uses.
fn own_console() {
    // SAFETY: plain Win32 calls; the handles passed to SetStdHandle are the process's own standard handles,
    // read just before. AllocConsole fails only if a console is still attached, which FreeConsole undid.
    unsafe {
        // AllocConsole may point the standard handles at the new console: the test's output (a pipe or a file
        // under a test runner) must stay where it was.
        let saved = STD_HANDLES.map(|h| GetStdHandle(h));
        FreeConsole();
        let allocated = AllocConsole();
        for (h, handle) in STD_HANDLES.into_iter().zip(saved) {
            SetStdHandle(h, handle);
        }
        assert_ne!(allocated, 0, "AllocConsole: {}", std::io::Error::last_os_error());
        // A console created by AllocConsole starts with Ctrl+C ignored for its process; let it through.
        SetConsoleCtrlHandler(None, 0);
    }
}

#[test]
fn ctrl_break_and_ctrl_c_reach_their_listeners() {
    own_console();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let mut brk = ctrl_break().unwrap();
        generate(CTRL_BREAK_EVENT);
        time::timeout(Duration::from_secs(10), brk.recv()).await.expect("Ctrl+Break within 10 s");

        // Ctrl+C: the listener is installed when ctrl_c() is first polled, so it waits in a task first.
        let c = spawn_local(ctrl_c());
        time::sleep(Duration::from_millis(50)).await;
        generate(CTRL_C_EVENT);
        time::timeout(Duration::from_secs(10), c).await.expect("Ctrl+C within 10 s").unwrap().unwrap();

        // A second Ctrl+Break, after the first was received, is seen again.
        generate(CTRL_BREAK_EVENT);
        time::timeout(Duration::from_secs(10), brk.recv()).await.expect("a second Ctrl+Break");
    });
    rt.close().expect("runtime closes cleanly");
}

#[test]
fn idle_listeners_do_not_keep_the_runtime_alive() {
    let rt = Runtime::new().unwrap();
    let listeners = rt.block_on(async {
        let brk = ctrl_break().unwrap();
        let close = ctrl_close().unwrap();
        assert!(format!("{brk:?}").contains("ctrl_break"));
        // A timer runs to its end although both listeners are installed and nothing is sent.
        time::sleep(Duration::from_millis(10)).await;
        (brk, close)
    });
    drop(listeners);
    rt.close().expect("runtime closes cleanly");
}
