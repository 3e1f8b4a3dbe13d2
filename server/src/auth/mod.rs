//! Identity and access: who a request comes from (passwords, tokens, sessions, OAuth) and what
//! they may do (roles bound per registry, namespace or stream, decided by [`Authorizer`]).

pub mod api;
pub mod authorizer;
pub mod bootstrap;
pub mod credentials;
pub mod http;
pub mod identity;
pub mod model;
pub mod names;
pub mod oauth;
pub mod reviews;
pub mod sign_in;
pub mod throttle;
pub mod tokens;

pub use authorizer::{Authorizer, Visible};
pub use identity::{AccessChange, AuthContext, AuthError};
pub use model::{Action, Role, Subject, Target};
