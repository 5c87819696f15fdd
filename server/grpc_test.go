package server

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/plb/plb/internal/testhttp"
)

// startGRPCInterop starts grpc-go's interop test server on loopback.
func startGRPCInterop(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, interop.NewTestServer())
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// grpcClient is a grpc-go client of addr over h2c.
func grpcClient(t *testing.T, addr string) testgrpc.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

// TestGRPCInterop runs grpc-go's interoperability cases between its
// interop client and server through a reverse_proxy speaking HTTP/2 on
// both sides (h2c to the client, backend_protocol h2c to the server):
// unary calls, streaming each way and both, cancellations, deadlines,
// metadata, status codes and messages. A failed case ends the test
// binary (grpc-go's interop cases fail with log.Fatal).
func TestGRPCInterop(t *testing.T) {
	backend := startGRPCInterop(t)
	ts := startProxy(t, []string{backend}, "", testhttp.ServiceKeys(`backend_protocol = "h2c"`, "http2 = true", `backend_timeout = "30s"`))
	tc := grpcClient(t, ts.addrOf("proxy"))
	cases := []struct {
		name string
		run  func(context.Context, testgrpc.TestServiceClient, ...grpc.CallOption)
	}{
		{"empty_unary", interop.DoEmptyUnaryCall},
		{"large_unary", interop.DoLargeUnaryCall},
		{"client_streaming", interop.DoClientStreaming},
		{"server_streaming", interop.DoServerStreaming},
		{"ping_pong", interop.DoPingPong},
		{"cancel_after_begin", interop.DoCancelAfterBegin},
		{"cancel_after_first_response", interop.DoCancelAfterFirstResponse},
		{"timeout_on_sleeping_server", interop.DoTimeoutOnSleepingServer},
		{"custom_metadata", interop.DoCustomMetadata},
		{"status_code_and_message", interop.DoStatusCodeAndMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c.run(ctx, tc)
		})
	}
	if n := ts.proxySvc("proxy").H2Stats().StreamsTotal.Load(); n < int64(len(cases)) {
		t.Errorf("%d streams to the backend for %d cases", n, len(cases))
	}
}

// TestGRPCErrorsCarryStatus: plb's own errors to a gRPC client are gRPC
// statuses (UNAVAILABLE when no node answers), not an HTML page the
// client could only call a protocol error.
func TestGRPCErrorsCarryStatus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	ts := startProxy(t, []string{dead}, "", testhttp.ServiceKeys(`backend_protocol = "h2c"`, "http2 = true"))
	tc := grpcClient(t, ts.addrOf("proxy"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = tc.EmptyCall(ctx, &testgrpc.Empty{})
	// grpc-go would make UNAVAILABLE of a bare 503 too: the message says
	// that plb's status came through.
	if s, _ := status.FromError(err); s.Code() != codes.Unavailable || !strings.HasPrefix(s.Message(), "plb: ") {
		t.Fatalf("a call with no node up: %v, want UNAVAILABLE from plb", err)
	}

	// A backend that does not answer in time: DEADLINE_EXCEEDED (grpc-go
	// would make UNAVAILABLE of a 504).
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ts = startProxy(t, []string{silent.Addr().String()}, "", testhttp.ServiceKeys(`backend_protocol = "h2c"`, "http2 = true", `backend_timeout = "300ms"`))
	tc = grpcClient(t, ts.addrOf("proxy"))
	_, err = tc.EmptyCall(ctx, &testgrpc.Empty{})
	if s, _ := status.FromError(err); s.Code() != codes.DeadlineExceeded || !strings.HasPrefix(s.Message(), "plb: ") {
		t.Fatalf("a call to a backend that never answers: %v, want DEADLINE_EXCEEDED from plb", err)
	}
}
