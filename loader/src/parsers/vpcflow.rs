//! vpcflow (in progress).
