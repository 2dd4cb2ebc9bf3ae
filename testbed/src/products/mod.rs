//! Stand-in products: package specs that behave enough like the real ones
//! for the seed procedures to be meaningful.
