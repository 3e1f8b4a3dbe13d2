//! Pieces shared by the console's pages.

mod change;
mod copy;
mod forms;
mod import;
mod live;
mod permissions;
mod preload;
// Rendered on the server only, into the answers of prunes and retention runs (`ShownPrune`).
#[cfg(feature = "ssr")]
mod prune_result;
mod search;
mod status;
mod supply_chain;
mod usage;
mod user_menu;
mod when;

#[cfg(not(feature = "hydrate"))]
pub use change::made_in_the_browser;
pub use change::{Change, ChangeButton, DeleteChangeButton};
pub use copy::{CommandLine, CopyButton};
pub use forms::{
    ActionError, Checkbox, ConfirmButton, TextField, island_action, keep_typed, typed_field,
};
pub use import::ImportForm;
pub use live::{LiveFeed, LiveRegion, provide_console, use_console};
#[cfg(feature = "hydrate")]
pub use live::{csrf, refresh_page, show_page};
pub use permissions::{NeedsRole, YourAccess};
pub use preload::{preload_island, provide_island_preloads};
#[cfg(feature = "ssr")]
pub use prune_result::PruneResultView;
pub use search::SearchField;
pub use status::{ErrorPanel, Loading, sign_in_href};
pub use supply_chain::SupplyChainSections;
pub use usage::UsageSummary;
pub use user_menu::UserMenu;
pub use when::When;
