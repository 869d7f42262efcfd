package main

import "github.com/govs/govs/internal/api"

// dial is the one place govsadm meets the API client.
func dial(socket string) api.Director { return api.NewClient(socket) }
