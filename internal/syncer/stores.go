package syncer

import (
	"fmt"
	"os"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/gitsrc"
)

// gitAuth resolves the git credentials the config names.
func gitAuth(g config.Git) (gitsrc.Auth, error) {
	token, err := config.ReadSecret(g.TokenFile)
	if err != nil {
		return gitsrc.Auth{}, fmt.Errorf("git token: %w", err)
	}
	if g.TokenFile != "" && token == "" {
		return gitsrc.Auth{}, fmt.Errorf("git token: %s is empty", g.TokenFile)
	}
	if g.TokenEnv != "" {
		if token = lookupEnv(g.TokenEnv); token == "" {
			return gitsrc.Auth{}, fmt.Errorf("git token: environment variable %s (git.token_env) is not set", g.TokenEnv)
		}
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
