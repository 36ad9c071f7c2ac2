package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a versitygw server (posix backend) on 127.0.0.1. Objects are
// plain files under Dir/<bucket>/<key>.
type S3Server struct {
	Endpoint  string // base URL, e.g. "http://127.0.0.1:40123"; use path-style addressing
	Region    string // "us-east-1"
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's root directory

	proc   *process
	client *s3.Client
}

var (
	sharedS3     *S3Server
	sharedS3Err  error
	sharedS3Once sync.Once
)

// S3 returns the test binary's shared S3 server, starting it on first use,
// or fails t. The package's tests must run through Main (see the package
// comment). Use NewBucket for a bucket of the test's own.
func S3(t testing.TB) *S3Server {
	t.Helper()
	requireMain(t)
	bin := tool(t, "versitygw")
	sharedS3Once.Do(func() {
		dir, err := os.MkdirTemp("", "chartsync-s3-")
		if err != nil {
			sharedS3Err = err
			return
		}
		sharedS3, sharedS3Err = startS3(bin, dir)
		onExit(func() {
			if sharedS3 != nil {
				sharedS3.proc.stop()
			}
			os.RemoveAll(dir)
		})
	})
	if sharedS3Err != nil {
		t.Fatalf("testenv: start versitygw: %v", sharedS3Err)
	}
	return sharedS3
}

// NewS3 starts a server that belongs to t and is stopped at t's cleanup, for
// tests that Stop and Start it. It does not need Main.
func NewS3(t testing.TB) *S3Server {
	t.Helper()
	bin := tool(t, "versitygw")
	s, err := startS3(bin, t.TempDir())
	if err != nil {
		t.Fatalf("testenv: start versitygw: %v", err)
	}
	t.Cleanup(s.proc.stop)
	return s
}

func startS3(bin, dir string) (*S3Server, error) {
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &S3Server{
		Endpoint:  "http://" + addr,
		Region:    "us-east-1",
		AccessKey: "chartsync-test",
		SecretKey: "chartsync-test-secret",
		Dir:       data,
	}
	s.proc = &process{
		name: "versitygw",
		path: bin,
		args: []string{"--port", addr, "--health", "/health", "--quiet", "posix", data},
		env:  []string{"ROOT_ACCESS_KEY=" + s.AccessKey, "ROOT_SECRET_KEY=" + s.SecretKey},
		log:  filepath.Join(dir, "versitygw.log"),
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	s.client = s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	return s, nil
}

func (s *S3Server) start() error {
	if err := s.proc.start(); err != nil {
		return err
	}
	if err := waitHealthy(s.Endpoint+"/health", s.proc, 15*time.Second); err != nil {
		s.proc.stop()
		return err
	}
	return nil
}

// NewBucket creates an empty bucket with a name unique in the test binary
// and returns its name, or fails t.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := uniqueName("t")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: create bucket %s: %v", name, err)
	}
	return name
}

// Stop kills the server (SIGKILL, like a crash). On the shared server this
// disturbs every test using it: fault tests use NewS3.
func (s *S3Server) Stop() {
	s.proc.stop()
}

// Start starts a stopped server again on the same port and data directory
// and waits until it is healthy, or fails t.
func (s *S3Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("testenv: restart versitygw: %v", err)
	}
}

// String describes the server for test logs.
func (s *S3Server) String() string {
	return fmt.Sprintf("versitygw at %s (data %s)", s.Endpoint, s.Dir)
}
