mod not_found;
mod repositories;

pub use not_found::NotFound;
pub use repositories::RepositoriesPage;
