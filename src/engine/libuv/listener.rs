//! (moved here from net/ and fs/)
