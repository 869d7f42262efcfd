//go:build !linux

package main

import (
	"errors"

	"github.com/govs/govs/internal/config"
)

// addAddress is Linux-only.
func addAddress(config.IPAddress, string) error {
	return errors.New("adding static addresses is not supported on this OS")
}
