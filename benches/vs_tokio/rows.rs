//! What every mode hands the report: one [`Row`] per contender per cell, with the median and spread of its rounds,
//! so `report` reuses the modes' own measurements instead of a copy of them.

/// Where a contender stands in its cell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    /// uvio, on some engine or API.
    Uvio,
    /// tokio: what the "x tokio" column divides by (only the row named in [`Row::baseline`] is the base).
    Tokio,
    /// No runtime at all (raw epoll, raw io_uring, 64 raw threads, the sleeps floor): what this machine allows.
    Ceiling,
}

/// One contender in one cell of one mode, over every round that ran.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    /// "echo", "files", "sleeps", "patterns".
    pub(crate) mode: &'static str,
    /// The cell inside the mode, e.g. "100 conns x 64 B" or "cold reads".
    pub(crate) cell: String,
    /// The contender, as the printed tables name it.
    pub(crate) server: String,
    /// The engine that ran ("tokio", "none" for the ceilings).
    pub(crate) engine: String,
    pub(crate) role: Role,
    /// The tokio row of this cell that ratios divide by.
    pub(crate) baseline: bool,
    /// What `median`, `min` and `max` count, e.g. "round trips/s", "ops/s", "s".
    pub(crate) unit: &'static str,
    /// Whether a bigger figure is better (rates) or smaller (wall times).
    pub(crate) higher_is_better: bool,
    /// The figure over the rounds: median and spread (NaN: it did not run here).
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// Median CPU microseconds (user + system) per operation of the measured process (NaN: not measured).
    pub(crate) cpu_us_per_op: f64,
    /// How many rounds gave a figure.
    pub(crate) rounds: usize,
    /// Anything else worth a column (peak RSS, how busy the server was), free text.
    pub(crate) note: String,
}

/// Median, min and max of some figures, NaN ones left out (all NaN for none).
pub(crate) fn spread(xs: &[f64]) -> (f64, f64, f64) {
    let ok: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    let min = ok.iter().copied().fold(f64::NAN, f64::min);
    let max = ok.iter().copied().fold(f64::NAN, f64::max);
    (crate::median(ok), min, max)
}

impl Row {
    /// A row with the figure's median and spread taken from `samples` (one per round).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_samples(
        mode: &'static str,
        cell: impl Into<String>,
        server: impl Into<String>,
        engine: impl Into<String>,
        role: Role,
        unit: &'static str,
        samples: &[f64],
        cpu_us_per_op: f64,
    ) -> Row {
        let (median, min, max) = spread(samples);
        Row {
            mode,
            cell: cell.into(),
            server: server.into(),
            engine: engine.into(),
            role,
            baseline: false,
            unit,
            higher_is_better: true,
            median,
            min,
            max,
            cpu_us_per_op,
            rounds: samples.iter().filter(|x| !x.is_nan()).count(),
            note: String::new(),
        }
    }

    /// This row as the base of the cell's "x tokio" column.
    pub(crate) fn baseline(mut self) -> Row {
        self.baseline = true;
        self
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    /// How much better this row does than `other` (>1: better), whichever way its figure points.
    pub(crate) fn speedup_over(&self, other: &Row) -> f64 {
        if self.higher_is_better {
            self.median / other.median
        } else {
            other.median / self.median
        }
    }
}
