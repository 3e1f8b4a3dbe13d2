//! Identity and access: who a request comes from (passwords, tokens, sessions, OAuth) and what
//! they may do (roles bound per registry, namespace or stream, decided by [`Authorizer`]).

pub mod authorizer;
pub mod credentials;
pub mod model;

pub use authorizer::{Authorizer, NamespaceCreation, Visible};
pub use model::{Action, Role, Subject, Target};
