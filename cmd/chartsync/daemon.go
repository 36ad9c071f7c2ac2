package main

import (
	"context"
	"errors"
)

func (o *options) daemon(ctx context.Context) error {
	return &exitError{exitUsage, errors.New("daemon mode is not built yet; use run --once")}
}
