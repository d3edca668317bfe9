//! One module per subcommand.

pub mod decide;
pub mod inspect;
pub mod new;
pub mod policies;
pub mod test_policy;
