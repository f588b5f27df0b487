//! Property test over the safe libuv layer: random sequences of create / start / stop / drop / run on timers,
//! idles, prepares and checks, with callbacks that stop, restart or drop their own handle or another one.
//! Checked: no callback runs for a handle that was stopped, dropped or (a one-shot timer) already fired; the
//! loop closes with nothing leaked; under valgrind (ci/valgrind.sh), no memory error. `PROPTEST_CASES` sets the
//! number of sequences (default 64).

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use uvio::uv::{Check, Handle as _, Idle, Loop, Prepare, RunMode, Timer};

const SLOTS: usize = 4;

/// Callbacks run over all sequences: the test checks it exercised callbacks at all.
static FIRED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Timer { ms: u64, repeat: bool },
    Idle,
    Prepare,
    Check,
}

/// What a callback does when it runs.
#[derive(Debug, Clone, Copy)]
enum OnFire {
    Nothing,
    StopSelf,
    DropSelf,
    RestartSelf,
    Drop(usize),
    Stop(usize),
}

#[derive(Debug, Clone)]
enum Step {
    Create(usize, Kind),
    Start(usize, OnFire),
    Stop(usize),
    Drop(usize),
    RunOnce,
    RunNoWait,
}

enum Handle {
    Timer(Timer, Kind),
    Idle(Idle),
    Prepare(Prepare),
    Check(Check),
}

/// One slot: the handle (if any) and whether its callback may run now.
#[derive(Default)]
struct Slot {
    handle: RefCell<Option<Handle>>,
    armed: Cell<bool>,
}

struct World {
    slots: Vec<Slot>,
    violations: RefCell<Vec<String>>,
    fired: Cell<u64>,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (0u64..3, any::<bool>()).prop_map(|(ms, repeat)| Kind::Timer { ms, repeat }),
        Just(Kind::Idle),
        Just(Kind::Prepare),
        Just(Kind::Check),
    ]
}

fn on_fire() -> impl Strategy<Value = OnFire> {
    prop_oneof![
        Just(OnFire::Nothing),
        Just(OnFire::StopSelf),
        Just(OnFire::DropSelf),
        Just(OnFire::RestartSelf),
        (0..SLOTS).prop_map(OnFire::Drop),
        (0..SLOTS).prop_map(OnFire::Stop),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => ((0..SLOTS), kind()).prop_map(|(i, k)| Step::Create(i, k)),
        3 => ((0..SLOTS), on_fire()).prop_map(|(i, f)| Step::Start(i, f)),
        1 => (0..SLOTS).prop_map(Step::Stop),
        1 => (0..SLOTS).prop_map(Step::Drop),
        2 => Just(Step::RunOnce),
        2 => Just(Step::RunNoWait),
    ]
}

impl World {
    fn stop(&self, i: usize) {
        self.slots[i].armed.set(false);
        let guard = self.slots[i].handle.borrow();
        let res = match &*guard {
            Some(Handle::Timer(h, _)) => h.stop(),
            Some(Handle::Idle(h)) => h.stop(),
            Some(Handle::Prepare(h)) => h.stop(),
            Some(Handle::Check(h)) => h.stop(),
            None => Ok(()),
        };
        res.expect("stop");
    }

    fn drop_handle(&self, i: usize) {
        self.slots[i].armed.set(false);
        let handle = self.slots[i].handle.borrow_mut().take();
        drop(handle); // closes it; libuv frees it after the close callback
    }

    /// Runs in a callback of slot `i`.
    fn fired(self: &Rc<Self>, i: usize, on_fire: OnFire) {
        self.fired.set(self.fired.get() + 1);
        if !self.slots[i].armed.get() {
            self.violations.borrow_mut().push(format!("slot {i} fired while not armed"));
        }
        if let Some(Handle::Timer(_, Kind::Timer { repeat: false, .. })) = &*self.slots[i].handle.borrow() {
            self.slots[i].armed.set(false); // a one-shot timer is inactive once it fired
        }
        match on_fire {
            OnFire::Nothing => {}
            OnFire::StopSelf => self.stop(i),
            OnFire::DropSelf => self.drop_handle(i),
            OnFire::RestartSelf => self.start(i, OnFire::Nothing),
            OnFire::Drop(j) => self.drop_handle(j),
            OnFire::Stop(j) => self.stop(j),
        }
    }

    fn start(self: &Rc<Self>, i: usize, on_fire: OnFire) {
        let world = Rc::downgrade(self);
        let cb = move || {
            if let Some(world) = world.upgrade() {
                world.fired(i, on_fire);
            }
        };
        let guard = self.slots[i].handle.borrow();
        let res = match &*guard {
            Some(Handle::Timer(h, Kind::Timer { ms, repeat })) => {
                let repeat = repeat.then(|| Duration::from_millis(ms + 1));
                h.start(Duration::from_millis(*ms), repeat, move |_| cb())
            }
            Some(Handle::Timer(..)) => unreachable!("a timer slot holds a timer kind"),
            Some(Handle::Idle(h)) => h.start(move |_| cb()),
            Some(Handle::Prepare(h)) => h.start(move |_| cb()),
            Some(Handle::Check(h)) => h.start(move |_| cb()),
            None => return,
        };
        res.expect("start");
        self.slots[i].armed.set(true);
    }
}

fn run_sequence(steps: &[Step]) -> Result<(), TestCaseError> {
    let lp = Loop::new().unwrap();
    let world = Rc::new(World {
        slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        violations: RefCell::default(),
        fired: Cell::new(0),
    });
    // An unreferenced 1 ms heartbeat bounds every blocking run: a loop whose only active handles are prepares
    // or checks would otherwise wait for I/O forever (libuv's semantics, not a fault).
    let heartbeat = Timer::new(&lp).unwrap();
    heartbeat.start(Duration::from_millis(1), Some(Duration::from_millis(1)), |_| {}).unwrap();
    heartbeat.unref();
    for step in steps {
        match *step {
            Step::Create(i, kind) => {
                world.drop_handle(i);
                let handle = match kind {
                    Kind::Timer { .. } => Handle::Timer(Timer::new(&lp).unwrap(), kind),
                    Kind::Idle => Handle::Idle(Idle::new(&lp).unwrap()),
                    Kind::Prepare => Handle::Prepare(Prepare::new(&lp).unwrap()),
                    Kind::Check => Handle::Check(Check::new(&lp).unwrap()),
                };
                *world.slots[i].handle.borrow_mut() = Some(handle);
            }
            Step::Start(i, on_fire) => world.start(i, on_fire),
            Step::Stop(i) => world.stop(i),
            Step::Drop(i) => world.drop_handle(i),
            Step::RunOnce => {
                lp.run(RunMode::Once).unwrap();
            }
            Step::RunNoWait => {
                lp.run(RunMode::NoWait).unwrap();
            }
        }
    }
    for i in 0..SLOTS {
        world.drop_handle(i);
    }
    drop(heartbeat);
    FIRED.fetch_add(world.fired.get(), std::sync::atomic::Ordering::Relaxed);
    let violations = world.violations.take();
    prop_assert!(violations.is_empty(), "{violations:?}");
    drop(world);
    common::close_clean(lp);
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

#[test]
fn random_handle_sequences_keep_the_rules() {
    let mut runner = TestRunner::new(Config { cases: cases(), ..Config::default() });
    runner.run(&prop::collection::vec(step(), 1..60), |steps| run_sequence(&steps)).unwrap();
    let fired = FIRED.load(std::sync::atomic::Ordering::Relaxed);
    println!("{} sequences, {fired} callbacks run", cases());
    assert!(fired > 0, "the sequences ran callbacks");
}
