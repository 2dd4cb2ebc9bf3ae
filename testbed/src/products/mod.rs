//! Stand-in products: package specs that behave enough like the real ones
//! for the seed procedures to be meaningful: daemons that really listen and
//! answer a health check, schemas that really migrate, conffiles that
//! really conflict.

pub mod cloudstack;
pub mod walt;
pub mod xivo;
