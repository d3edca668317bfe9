//! One module per subcommand.

pub mod backtest;
pub mod cpa;
pub mod decide;
pub mod inspect;
pub mod new;
pub mod policies;
pub mod serve;
pub mod test_policy;
