#!/usr/bin/env bash
# timeout: 150
# t_scan_write.sh with [scan] on-open = no: the block action must still
# deny a blocked file's later opens (xenfsd asks the scanner's block list
# whenever block is in effect), and everything else behaves the same.
XF_SCAN_ON_OPEN=no exec "$(dirname "$0")/t_scan_write.sh" "$@"
