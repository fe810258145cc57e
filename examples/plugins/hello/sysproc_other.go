//go:build !linux

package main

import "syscall"

// sysProcAttr: there is no parent-death signal outside Linux.
func sysProcAttr() *syscall.SysProcAttr { return nil }
