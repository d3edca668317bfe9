//! One module per subcommand.

pub mod decide;
pub mod inspect;
pub mod policies;
