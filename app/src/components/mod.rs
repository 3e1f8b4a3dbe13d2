//! Pieces shared by the console's pages.

mod copy;
mod forms;
mod import;
mod live;
mod prune_result;
mod status;
mod supply_chain;
mod usage;
mod user_menu;

pub use copy::{CommandLine, CopyButton};
pub use forms::{ActionError, Checkbox, ConfirmButton, DeleteButton, TextField};
pub use import::{ImportForm, ImportState};
pub use live::{NoticeArea, provide_console, use_console};
pub use prune_result::PruneResultView;
pub use status::{ErrorPanel, Loading};
pub use supply_chain::SupplyChainSections;
pub use usage::UsageSummary;
pub use user_menu::UserMenu;
