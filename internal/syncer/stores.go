package syncer

import (
	"context"
	"fmt"

	"os"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/publisher/local"
	"github.com/chartsync/chartsync/internal/publisher/store"
)

// openStore builds the backend a [store.NAME] table describes.
func openStore(ctx context.Context, sc config.Store) (store.Store, error) {
	switch sc.Type {
	case "local":
		return local.New(ctx, local.Config{Path: sc.Path})
	}
	return nil, fmt.Errorf("type %q is not supported", sc.Type)
}

// gitAuth resolves the git credentials the config names.
func gitAuth(g config.Git) (gitsrc.Auth, error) {
	token, err := config.ReadSecret(g.TokenFile)
	if err != nil {
		return gitsrc.Auth{}, fmt.Errorf("git token: %w", err)
	}
	if g.TokenEnv != "" {
		token = lookupEnv(g.TokenEnv)
	}
	return gitsrc.Auth{
		SSHKeyFile:     g.SSHKeyFile,
		KnownHostsFile: g.KnownHostsFile,
		Username:       g.Username,
		Token:          token,
	}, nil
}

// lookupEnv reads credentials named by the config (token_env, and the AWS
// and OpenStack conventions). The store backends never read it themselves.
var lookupEnv = os.Getenv
