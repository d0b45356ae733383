//! Identity: who is calling (`authenticate`: an operator's OIDC token checked in `oidc`, or
//! an API key from `api_key`), what they may do (`permission`), and what their permission
//! labels let them see (`principal`). Every route goes through `authenticate`; the public
//! webhooks are marked public in the one table of operations.

pub mod api_key;
mod audit;
mod authenticate;
pub mod oidc;
pub mod permission;
mod principal;

pub use authenticate::authenticate;
pub use oidc::{OidcConfig, OidcVerifier};
pub use permission::{access, Access, Permission, Role, OPERATIONS};
pub use principal::{Principal, PrincipalKind};
