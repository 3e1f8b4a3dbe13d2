mod user_menu;

pub use user_menu::UserMenu;
