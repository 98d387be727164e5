//! Integration tests: real quire nodes on 127.0.0.1:0 in temporary directories.
