//! Pieces shared by the console's pages.

mod copy;
mod focus;
mod forms;
mod import;
mod live;
mod permissions;
mod prune_result;
mod status;
mod supply_chain;
mod usage;
mod user_menu;
mod when;

pub use copy::{CommandLine, CopyButton};
pub use focus::FocusOnNavigation;
pub use forms::{ActionError, Checkbox, ConfirmButton, DeleteButton, TextField};
pub use import::{ImportForm, ImportState};
pub use live::{NoticeArea, provide_console, use_console};
pub use permissions::{NeedsRole, YourAccess};
pub use prune_result::PruneResultView;
pub use status::{ErrorPanel, Loading, sign_in_href};
pub use supply_chain::SupplyChainSections;
pub use usage::UsageSummary;
pub use user_menu::UserMenu;
pub use when::When;
