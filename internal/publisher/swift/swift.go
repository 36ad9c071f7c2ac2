// Package swift implements store.Store on one OpenStack Swift container,
// with github.com/ncw/swift/v2.
//
// Swift has no compare-and-swap, so this store is not atomic (Atomic
// reports false). Measured on Swift 2.30:
//   - PUT with If-None-Match: * answers 412 when the object already exists,
//     but the check is not atomic: of several creators racing on one name,
//     any number (one to all) may get 201, and the last writer's bytes stay.
//   - PUT ignores If-Match: a write cannot be made conditional on the
//     stored version.
//
// What the store guarantees:
//   - Create never replaces an object that existed when it last checked
//     (store.ErrExist), and claims the final name with a server-side copy
//     of a staged upload, so that its window (check to write) is two
//     requests that do not depend on the upload's duration (see Create). Racing
//     Creates of one key within that window may all succeed; the stored
//     bytes are those of one of them.
//   - List never shows Create's staging objects and deletes those older
//     than StagingMaxAge: the only deletes the store does.
//   - RestoreVersion (store.Versioned) copies back a kept version of an
//     object when the container keeps overwritten objects.
//   - Replace reads the stored version (HEAD) and refuses with
//     store.ErrConflict or store.ErrNotExist when it does not match, before
//     writing. Between that check and the PUT there is a window (one request
//     round trip) in which another writer's object can be overwritten: two
//     Replaces from the same version may both succeed, and the last one's
//     bytes stay. Callers re-read after writing and reconcile (the publisher
//     does, every cycle).
//   - A write reported as a success was stored with exactly the given bytes
//     (the proxy checks the MD5 sent in the ETag header) — though with the
//     window above, it may already have been overwritten.
//   - A transport error or 5xx on a write means "outcome unknown": the store
//     reads the object back before retrying and reports success if it holds
//     exactly the bytes being written. Retries are bounded (Config.Retries).
//   - Listings are paged (10,000 names a page) and come back in key order.
//     On a multi-node Swift, container listings are eventually consistent: a
//     new object may appear in List some time after its PUT succeeded.
//   - Versions are the objects' ETags: the MD5 of their bytes.
//
// The container must exist, unless Config.CreateContainer is set; a missing
// container is an error, never store.ErrNotExist.
package swift

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

// DefaultRetries is the number of retries of a failed write when
// Config.Retries is zero.
const DefaultRetries = 3

// Config says how to authenticate to Swift and which container to use. It
// follows the OpenStack client conventions; ConfigFromEnv fills it from the
// usual environment variables. New never reads the environment itself.
type Config struct {
	// AuthURL is the identity endpoint: a Keystone URL
	// ("https://keystone.example:5000/v3") or a v1 auth URL
	// ("http://proxy:8080/auth/v1.0"). Required.
	AuthURL string
	// AuthVersion is 1, 2 or 3; 0 guesses it from AuthURL.
	AuthVersion int
	// User names the user (v1: "account:user"); UserID may replace it (v3).
	User   string
	UserID string
	// Key is the password (v2, v3) or the key (v1).
	Key string
	// Project (tenant in v2) and its ID scope the token (v2, v3).
	Project   string
	ProjectID string
	// Domain and DomainID are the user's domain (v3).
	Domain   string
	DomainID string
	// ProjectDomain and ProjectDomainID are the project's domain, when it
	// differs from the user's (v3).
	ProjectDomain   string
	ProjectDomainID string
	// Region selects the object-store endpoint of the catalog (v2, v3);
	// empty means the first one.
	Region string
	// EndpointType is "public" (default), "internal" or "admin".
	EndpointType string
	// Application credentials (v3) replace User and Key: set
	// ApplicationCredentialSecret and either the ID or the Name (with User).
	ApplicationCredentialID     string
	ApplicationCredentialName   string
	ApplicationCredentialSecret string

	// Container holds the objects. Required.
	Container string
	// CreateContainer makes New create Container if it does not exist; New
	// then contacts the server. Otherwise New does no I/O, and a missing
	// container makes every operation fail.
	CreateContainer bool
	// Timeout bounds each request's idle time (no data moving); 0 means 60 s.
	// The context passed to each operation bounds its total time.
	Timeout time.Duration
	// Retries bounds the retries of a write that failed with a transport
	// error or a 5xx; 0 means DefaultRetries, -1 none. The client library
	// retries reads after transport errors only: a 5xx on a read fails it,
	// and with it the cycle, which the next cycle repeats.
	Retries int
}

// Store is a store.Store on one Swift container. It is safe for concurrent
// use.
type Store struct {
	conn      *swift.Connection
	authMu    sync.Mutex // see ready
	container string
	retries   int
	backoff   time.Duration // wait before the first retry; doubles after each
	pageSize  int           // names per listing request
	// stagingMaxAge is the age at which List deletes a staging object.
	stagingMaxAge time.Duration
}

var _ store.Store = (*Store)(nil)

// New checks cfg and returns a Store. Authentication happens at the first
// operation, unless cfg.CreateContainer is set: then New authenticates and
// creates the container if it is missing.
func New(ctx context.Context, cfg Config) (*Store, error) {
	switch {
	case cfg.AuthURL == "":
		return nil, errors.New("swift: auth url is required")
	case cfg.Container == "":
		return nil, errors.New("swift: container is required")
	case strings.Contains(cfg.Container, "/"):
		return nil, fmt.Errorf("swift: container %q contains a slash", cfg.Container)
	case cfg.AuthVersion < 0 || cfg.AuthVersion > 3:
		return nil, fmt.Errorf("swift: auth version %d: want 1, 2 or 3 (0 to guess)", cfg.AuthVersion)
	case cfg.ApplicationCredentialSecret == "" && cfg.User == "" && cfg.UserID == "":
		return nil, errors.New("swift: user (or application credential) is required")
	case cfg.Retries < -1:
		return nil, fmt.Errorf("swift: retries %d: want -1 or more", cfg.Retries)
	}
	endpointType := swift.EndpointTypePublic
	switch strings.TrimSuffix(strings.ToLower(cfg.EndpointType), "url") {
	case "", "public":
	case "internal":
		endpointType = swift.EndpointTypeInternal
	case "admin":
		endpointType = swift.EndpointTypeAdmin
	default:
		return nil, fmt.Errorf("swift: endpoint type %q: want public, internal or admin", cfg.EndpointType)
	}
	retries := cfg.Retries
	switch retries {
	case 0:
		retries = DefaultRetries
	case -1:
		retries = 0
	}
	conn := &swift.Connection{
		AuthUrl:                     cfg.AuthURL,
		AuthVersion:                 cfg.AuthVersion,
		UserName:                    cfg.User,
		UserId:                      cfg.UserID,
		ApiKey:                      cfg.Key,
		Tenant:                      cfg.Project,
		TenantId:                    cfg.ProjectID,
		Domain:                      cfg.Domain,
		DomainId:                    cfg.DomainID,
		TenantDomain:                cfg.ProjectDomain,
		TenantDomainId:              cfg.ProjectDomainID,
		Region:                      cfg.Region,
		EndpointType:                endpointType,
		ApplicationCredentialId:     cfg.ApplicationCredentialID,
		ApplicationCredentialName:   cfg.ApplicationCredentialName,
		ApplicationCredentialSecret: cfg.ApplicationCredentialSecret,
		Timeout:                     cfg.Timeout,
		UserAgent:                   "chartsync",
	}
	s := &Store{
		conn:      conn,
		container: cfg.Container,
		retries:   retries,
		backoff:   100 * time.Millisecond,
		pageSize:  10000,

		stagingMaxAge: StagingMaxAge,
	}
	if cfg.CreateContainer {
		// PUT of an existing container is a no-op (202) that keeps its
		// metadata and objects.
		if err := conn.ContainerCreate(ctx, cfg.Container, nil); err != nil {
			return nil, fmt.Errorf("swift: create container %s: %w", cfg.Container, err)
		}
	}
	return s, nil
}

// String returns "swift://CONTAINER".
func (s *Store) String() string {
	return "swift://" + s.container
}

// Atomic reports false: see the package comment for what Create and Replace
// guarantee on Swift.
func (s *Store) Atomic() bool { return false }

// ready returns ctx's error, or authenticates the connection if it is not
// authenticated. Every operation calls it first: the client library reads
// the storage URL before it takes its lock, so that requests racing the
// first authentication (or the one after a token expired) could go out
// without a URL ("unsupported protocol scheme").
func (s *Store) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.conn.Authenticated() {
		return nil
	}
	return s.conn.Authenticate(ctx)
}

// Get returns the object's bytes and ETag, or store.ErrNotExist. The bytes
// are checked against the ETag.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := s.ready(ctx); err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	var buf bytes.Buffer
	headers, err := s.conn.ObjectGet(ctx, s.container, key, &buf, true, nil)
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, s.notFound(ctx, err))
	}
	return buf.Bytes(), strings.Trim(headers["Etag"], `"`), nil
}

// notFound turns an object 404 into store.ErrNotExist, unless it is the
// container that is missing (Swift answers 404 for both).
func (s *Store) notFound(ctx context.Context, err error) error {
	if !errors.Is(err, swift.ObjectNotFound) {
		return err
	}
	// A one-name listing rather than a HEAD: Swift answers a container HEAD
	// with a 204 that carries a stray chunked body, which Go's HTTP client
	// logs as an unsolicited response.
	if _, cerr := s.conn.Objects(ctx, s.container, &swift.ObjectsOpts{Limit: 1}); cerr != nil {
		if errors.Is(cerr, swift.ContainerNotFound) {
			return fmt.Errorf("container %s does not exist", s.container)
		}
		return fmt.Errorf("object not found, container check failed: %w", cerr)
	}
	return store.ErrNotExist
}

// Create stores data under key unless an object exists there, so that the
// moment the final name is claimed does not depend on how long the upload
// takes:
//
//  1. a HEAD of key: an existing object gives store.ErrExist before any
//     upload;
//  2. an upload to a staging name no reader lists (see StagingDir);
//  3. a second HEAD of key (store.ErrExist if an object appeared), then a
//     server-side copy (PUT with X-Copy-From) of the staging object to key;
//  4. a delete of the staging object.
//
// Swift's copy cannot carry If-None-Match: * for the destination (the copy
// middleware applies conditional headers to the source, which exists), so
// the check of step 3 is the HEAD. Another writer's object that appears
// between that HEAD and the copy is overwritten: a window of two requests
// (tens of milliseconds; the copy grows with the size inside the cluster,
// see docs/consistency.md), where a plain PUT's window is its whole upload
// over the client's link. A staging object left behind by a crash is
// deleted by a later List (see List). These deletes of the store's own
// staging names are the only deletes the store ever does.
func (s *Store) Create(ctx context.Context, key string, data []byte) error {
	if err := s.ready(ctx); err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	if err := s.absent(ctx, key); err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	staging := stagingKey(key)
	if _, err := s.put(ctx, staging, data, "", store.ErrExist, ""); err != nil {
		return fmt.Errorf("create %s: upload to %s: %w", key, staging, err)
	}
	err := s.absent(ctx, key)
	if err == nil {
		_, err = s.put(ctx, key, data, "", store.ErrExist, staging)
	}
	// The staging object has served its purpose whatever the copy did.
	s.deleteStaging(context.WithoutCancel(ctx), staging)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	return nil
}

// deleteStaging deletes a staging object, trying again after a transport
// error (a keep-alive connection the server closed); a failure leaves it to
// a later List.
func (s *Store) deleteStaging(ctx context.Context, key string) {
	for attempt := range 3 {
		err := s.conn.ObjectDelete(ctx, s.container, key)
		if err == nil || errors.Is(err, swift.ObjectNotFound) || statusCode(err) != 0 {
			return
		}
		if store.Backoff(ctx, s.backoff, time.Second, attempt+1) != nil {
			return
		}
	}
}

// absent returns nil if no object is stored under key, else store.ErrExist
// or the error that kept it from knowing.
func (s *Store) absent(ctx context.Context, key string) error {
	_, _, err := s.conn.Object(ctx, s.container, key)
	if err == nil {
		return store.ErrExist
	}
	if err = s.notFound(ctx, err); !errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("check: %w", err)
	}
	return nil
}

// StagingDir is the directory, beside each object, that Create uploads to
// before it copies the object to its final name: "<dir>/.chartsync-staging/"
// for "<dir>/<name>". Its objects are never listed by List.
const StagingDir = ".chartsync-staging"

// StagingMaxAge is the age after which List deletes a staging object: a
// Create that started that long ago has crashed or been given up, since its
// copy follows its upload at once.
const StagingMaxAge = time.Hour

// stagingKey returns a fresh staging name for key.
func stagingKey(key string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	dir, name := path.Split(key)
	return fmt.Sprintf("%s%s/%s.%d.%s", dir, StagingDir, name, time.Now().UnixNano(), hex.EncodeToString(b[:]))
}

// isStaging reports whether key is a staging name of Create.
func isStaging(key string) bool {
	return strings.HasPrefix(key, StagingDir+"/") || strings.Contains(key, "/"+StagingDir+"/")
}

// Replace checks that the stored object's ETag is version ("": that no
// object exists), then writes data. A mismatch found by the check gives
// store.ErrConflict (store.ErrNotExist if the object is missing and version
// is not ""). The check and the write are two requests: see the package
// comment for the window between them.
func (s *Store) Replace(ctx context.Context, key string, data []byte, version string) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	if err := s.check(ctx, key, version); err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	newVersion, err := s.put(ctx, key, data, version, store.ErrConflict, "")
	if err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	return newVersion, nil
}

// check compares the stored object's version with version.
func (s *Store) check(ctx context.Context, key, version string) error {
	info, _, err := s.conn.Object(ctx, s.container, key)
	switch {
	case err != nil:
		err = s.notFound(ctx, err)
		if errors.Is(err, store.ErrNotExist) {
			if version == "" {
				return nil
			}
			return store.ErrNotExist
		}
		return fmt.Errorf("check version: %w", err)
	case version == "" || info.Hash != version:
		return store.ErrConflict
	}
	return nil
}

// put writes data under key. With version "" the PUT carries If-None-Match:
// *, whose 412 gives refused; otherwise it carries If-Match: version, which
// Swift ignores but a server that honours it turns into a real guard. With
// copyFrom set, the PUT sends no body and no condition (the copy middleware
// would apply it to the source) but copies the object copyFrom, which must
// hold exactly data, on the server; after an unknown outcome the read-back
// still refuses to go on over other bytes. It returns the new version.
func (s *Store) put(ctx context.Context, key string, data []byte, version string, refused error, copyFrom string) (string, error) {
	sum := md5.Sum(data)
	hash := hex.EncodeToString(sum[:])
	headers := swift.Headers{"Content-Length": strconv.Itoa(len(data))}
	body, sendHash := data, hash
	if copyFrom != "" {
		headers["Content-Length"] = "0"
		headers["X-Copy-From"] = (&url.URL{Path: s.container + "/" + copyFrom}).EscapedPath()
		body, sendHash = nil, ""
	}
	switch {
	case copyFrom != "":
	case version == "":
		headers["If-None-Match"] = "*"
	default:
		headers["If-Match"] = version
	}
	return store.ConditionalWrite{
		Key: key, Data: data, Version: version, Refused: refused,
		Attempts: s.retries + 1, Backoff: s.backoff,
		// checkHash false with hash set: the proxy verifies the MD5 and
		// answers 422 on a mismatch.
		Put: func(ctx context.Context) (string, error) {
			out, err := s.conn.ObjectPut(ctx, s.container, key, bytes.NewReader(body), false, sendHash, store.ContentType(key), headers)
			if err != nil {
				return "", err
			}
			etag := strings.Trim(out["Etag"], `"`)
			switch {
			case etag == "":
				return hash, nil
			case copyFrom != "" && etag != hash:
				return "", fmt.Errorf("%w: copy from %s stored md5 %s, want %s", errCopyMismatch, copyFrom, etag, hash)
			}
			return etag, nil
		},
		Classify: func(err error) (store.Verdict, error) {
			switch code := statusCode(err); {
			case errors.Is(err, errCopyMismatch):
				return store.Failed, err
			case code == http.StatusPreconditionFailed:
				return store.Refused, nil
			case code == http.StatusNotFound && copyFrom != "":
				if err := s.notFound(ctx, swift.ObjectNotFound); !errors.Is(err, store.ErrNotExist) {
					return store.Failed, err
				}
				return store.Failed, fmt.Errorf("staging object %s vanished before the copy", copyFrom)
			case code == http.StatusNotFound:
				return store.Failed, s.notFound(ctx, swift.ObjectNotFound)
			case code == 0, code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code == 498:
				return store.Unknown, nil
			}
			return store.Failed, err
		},
		Get: s.Get,
	}.Do(ctx)
}

// errCopyMismatch: a server-side copy stored other bytes than the staging
// object was written with.
var errCopyMismatch = errors.New("copy stored other bytes")

// List returns the objects whose keys start with prefix, in key order,
// fetching the listing a page at a time. It leaves out Create's staging
// objects, and deletes those older than StagingMaxAge: leftovers of a
// Create that crashed between its upload and its delete.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Object, error) {
	if err := s.ready(ctx); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	var objects []store.Object
	var stale []string
	opts := &swift.ObjectsOpts{Prefix: prefix, Limit: s.pageSize}
	for {
		page, err := s.conn.Objects(ctx, s.container, opts)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page {
			if isStaging(o.Name) {
				if !o.LastModified.IsZero() && time.Since(o.LastModified) > s.stagingMaxAge {
					stale = append(stale, o.Name)
				}
				continue
			}
			objects = append(objects, store.Object{Key: o.Name, Size: o.Bytes, Version: strings.Trim(o.Hash, `"`)})
		}
		if len(page) < opts.Limit {
			break
		}
		opts.Marker = page[len(page)-1].Name
	}
	for _, name := range stale {
		s.deleteStaging(ctx, name)
	}
	return objects, nil
}

var _ store.Versioned = (*Store)(nil)

// RestoreVersion implements store.Versioned: when the container keeps
// overwritten objects (X-History-Location or X-Versions-Location, the
// versioned_writes middleware), it reads the kept versions of key, newest
// first, and copies the first one that satisfies match back over key (a
// server-side copy; the container then keeps the version it replaces).
func (s *Store) RestoreVersion(ctx context.Context, key string, match func([]byte) bool) (bool, error) {
	if err := s.ready(ctx); err != nil {
		return false, fmt.Errorf("restore %s: %w", key, err)
	}
	_, headers, err := s.conn.Container(ctx, s.container)
	if err != nil {
		return false, fmt.Errorf("restore %s: read container: %w", key, err)
	}
	archive := headers["X-History-Location"]
	if archive == "" {
		archive = headers["X-Versions-Location"]
	}
	if archive == "" {
		return false, nil
	}
	if a, err := url.PathUnescape(archive); err == nil {
		archive = a
	}
	// versioned_writes names each kept version "<3 hex digits: length of
	// the name><name>/<timestamp>"; timestamps sort oldest first.
	names, err := s.conn.ObjectNamesAll(ctx, archive, &swift.ObjectsOpts{Prefix: fmt.Sprintf("%03x%s/", len(key), key)})
	if err != nil {
		return false, fmt.Errorf("restore %s: list %s: %w", key, archive, err)
	}
	for i := len(names) - 1; i >= 0; i-- {
		var buf bytes.Buffer
		if _, err := s.conn.ObjectGet(ctx, archive, names[i], &buf, true, nil); err != nil {
			return false, fmt.Errorf("restore %s: read %s/%s: %w", key, archive, names[i], err)
		}
		if !match(buf.Bytes()) {
			continue
		}
		headers := swift.Headers{
			"Content-Length": "0",
			"X-Copy-From":    (&url.URL{Path: archive + "/" + names[i]}).EscapedPath(),
		}
		if _, err := s.conn.ObjectPut(ctx, s.container, key, bytes.NewReader(nil), false, "", store.ContentType(key), headers); err != nil {
			return false, fmt.Errorf("restore %s from %s/%s: %w", key, archive, names[i], err)
		}
		return true, nil
	}
	return false, nil
}

// statusCode returns the HTTP status of a failed request, or 0 when no
// response was received.
func statusCode(err error) int {
	var se *swift.Error
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}
