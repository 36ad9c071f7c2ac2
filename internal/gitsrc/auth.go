package gitsrc

import (
	"fmt"
	"net"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// DefaultTokenUser is the user name sent with Auth.Token when Auth.Username is
// empty. GitHub requires it for app installation tokens and accepts it with
// personal access tokens; GitLab and Gitea accept any non-empty user name
// with a personal access token. Gerrit needs the real user name.
const DefaultTokenUser = "x-access-token"

// Auth holds credentials for the remote. All fields are optional. Secrets are
// already resolved by the caller; gitsrc reads only the files named here.
// Fields that do not apply to the URL's transport are ignored: ssh fields for
// http(s) URLs, http fields for ssh URLs, all of them for local paths,
// file:// and git://.
type Auth struct {
	// SSHKeyFile is the private key file for ssh:// and scp-like URLs. If
	// empty, keys are taken from the ssh agent at $SSH_AUTH_SOCK.
	SSHKeyFile string
	// SSHKeyPassword decrypts SSHKeyFile if it is encrypted.
	SSHKeyPassword string
	// KnownHostsFile verifies the ssh server's host key. If empty, go-git's
	// default applies: the files in $SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts
	// and /etc/ssh/ssh_known_hosts. An unknown host key is always an error.
	KnownHostsFile string
	// Username for http(s) basic auth; DefaultTokenUser if empty and Token
	// is set.
	Username string
	// Token is the http(s) password or access token.
	Token string
}

// authMethod builds the go-git AuthMethod for rawURL from a. It returns nil
// (no auth) for local paths, file://, git:// and http(s) without credentials.
func authMethod(rawURL string, a Auth) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse URL: %w", err)
	}
	switch ep.Protocol {
	case "ssh":
		return sshAuth(ep, a)
	case "http", "https":
		if a.Username == "" && a.Token == "" {
			return nil, nil
		}
		user := a.Username
		if user == "" {
			user = DefaultTokenUser
		}
		return &githttp.BasicAuth{Username: user, Password: a.Token}, nil
	default:
		return nil, nil
	}
}

func sshAuth(ep *transport.Endpoint, a Auth) (transport.AuthMethod, error) {
	user := ep.User
	if user == "" {
		user = "git"
	}
	// A custom host key callback turns off go-git's own choice of host key
	// algorithms, so set both from the known_hosts database: otherwise a
	// server offering an ed25519 key fails against a known_hosts that lists
	// only its rsa key.
	var files []string
	if a.KnownHostsFile != "" {
		files = []string{a.KnownHostsFile}
	}
	db, err := gitssh.NewKnownHostsDb(files...)
	if err != nil {
		return nil, fmt.Errorf("ssh known_hosts: %w", err)
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	hk := gitssh.HostKeyCallbackHelper{
		HostKeyCallback:   db.HostKeyCallback(),
		HostKeyAlgorithms: db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port))),
	}
	if a.SSHKeyFile == "" {
		ag, err := gitssh.NewSSHAgentAuth(user)
		if err != nil {
			return nil, fmt.Errorf("ssh auth: no key file and no agent: %w", err)
		}
		ag.HostKeyCallbackHelper = hk
		return ag, nil
	}
	pk, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, a.SSHKeyPassword)
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %w", a.SSHKeyFile, err)
	}
	pk.HostKeyCallbackHelper = hk
	return pk, nil
}
