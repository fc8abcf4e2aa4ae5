// Command api is ratekit's demo service: the rate limits of five public APIs,
// each modelled with the algorithm its documentation describes, behind one
// net/http mux on 127.0.0.1.
//
//	go run ./examples/api -drive    # serve, drive a few seconds of load at it, print what happened
//	go run ./examples/api           # serve on 127.0.0.1:8080 until interrupted
//
// The APIs, their routes and their limits:
//
//   - Sanity, POST /sanity/data/mutate/{dataset}: 25 mutations per second per
//     client IP (an exact sliding window) and 100 mutations in flight per
//     dataset (a concurrency limit, released when the handler returns).
//     Headers X-RateLimit-Limit-<policy>, X-RateLimit-Remaining-<policy> and
//     RateLimit-Reset. Datasets: production, staging. No key.
//   - A mail API, POST /mail/v1/messages: 600 requests per sliding minute per
//     org, shared by all the org's live keys, and 60 (10%) shared by its test
//     keys. A missing or unknown key gets 401 and counts against the client
//     IP's failure ceiling, 10 per sliding minute, past which every request
//     from that IP gets 429, valid key or not. Headers X-RateLimit-* (Reset in
//     seconds) and the IETF RateLimit-Policy and RateLimit, on every response,
//     401 included. Keys (Authorization: Bearer KEY): sk_live_acme_1,
//     sk_live_acme_2, sk_test_acme_1, sk_test_acme_2 (org acme),
//     sk_live_globex_1 (org globex).
//   - Rollbar, POST /rollbar/api/1/item/: per access token, a system limit of
//     100 per minute and an optional user-defined limit, both windows that open
//     at the first event, taken all or none, so that events one refuses do not
//     count against the other. The first refusal of a window is logged once, as
//     Rollbar's "System Message". Headers X-Rate-Limit-*. Tokens
//     (X-Rollbar-Access-Token: TOKEN): tok_backend (user limit 1000 per hour),
//     tok_frontend (user limit 50 per minute), tok_worker (no user limit).
//   - Sender, GET /sender/v2/subscribers (also campaigns, groups): 60 requests
//     per minute per account, shared by its tokens, resetting at the top of
//     each minute. Headers X-RateLimit-* with Reset in RFC 3339. Tokens
//     (Authorization: Bearer TOKEN): sender_token_1, sender_token_2 (account
//     acct_42).
//   - Sentry, GET /sentry/api/0/organizations/acme/issues/: 40 requests per 10
//     seconds per org, windows aligned to the clock. Headers
//     X-Sentry-Rate-Limit-* with Reset as a Unix time. Token (Authorization:
//     Bearer TOKEN): sntrys_acme.
//
// Every 429 carries Retry-After and an application/problem+json body. The
// demo trusts X-Forwarded-For from loopback, as if a reverse proxy ran in
// front of it, so that a client on this machine can play many IPs:
//
//	curl -i -X POST -H 'Authorization: Bearer sk_live_acme_1' http://127.0.0.1:8080/mail/v1/messages
//	curl -i -X POST -H 'X-Forwarded-For: 203.0.113.7' http://127.0.0.1:8080/sanity/data/mutate/production
//
// With -drive it listens on a free loopback port (or -addr, if given), sends
// itself -duration of load (the same few hundred requests each second: every
// limit at several times its rate, a burst of concurrent mutations, failed
// authentication, and clients within their limits), prints per second and per
// client what was admitted and refused, then one response of each kind with
// its rate-limit headers, and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	driveMode := flag.Bool("drive", false, "drive a bounded load at the service, print what happened, and exit")
	duration := flag.Duration("duration", 5*time.Second, "how long -drive runs, in whole seconds (at most 10m)")
	flag.Usage = usage
	flag.Parse()
	if flag.NArg() > 0 {
		usage()
		os.Exit(2)
	}
	addrSet := false
	flag.Visit(func(f *flag.Flag) { addrSet = addrSet || f.Name == "addr" })

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if *driveMode {
		listen := "127.0.0.1:0"
		if addrSet {
			listen = *addr
		}
		err = runDrive(ctx, os.Stdout, listen, *duration)
	} else {
		err = serve(ctx, *addr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

// routes is the service's map, printed by -help and served at /.
const routes = `ratekit's demo service: five public APIs' rate limits.

  POST /sanity/data/mutate/{dataset}  25/s per IP (sliding), 100 in flight per dataset;
                                      dataset: production or staging; no key
  POST /mail/v1/messages              600/sliding minute per org (test keys 60); 10 failed auths
                                      per minute per IP, then 429. Authorization: Bearer KEY,
                                      KEY: sk_live_acme_1, sk_live_acme_2, sk_test_acme_1,
                                      sk_test_acme_2 (org acme), sk_live_globex_1 (org globex)
  POST /rollbar/api/1/item/           system 100/min + user limit per token, windows from the first
                                      event. X-Rollbar-Access-Token: tok_backend (user 1000/h),
                                      tok_frontend (user 50/min), tok_worker (no user limit)
  GET  /sender/v2/subscribers         60/min per account, reset at :00. Authorization: Bearer
                                      sender_token_1 or sender_token_2 (account acct_42)
  GET  /sentry/api/0/organizations/acme/issues/
                                      40 per 10s per org. Authorization: Bearer sntrys_acme

X-Forwarded-For is trusted from loopback, so one machine can play many client IPs.
`

func usage() {
	out := flag.CommandLine.Output()
	fmt.Fprint(out, "usage: go run ./examples/api [-addr 127.0.0.1:8080] [-drive [-duration 5s]]\n\n"+routes+"\nflags:\n")
	flag.PrintDefaults()
}

// serve runs the service on addr until ctx is done.
func serve(ctx context.Context, addr string) error {
	svc, err := newService(nil, log.Writer(), nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("serving the demo API on http://%s (go run ./examples/api -help lists routes and keys)", ln.Addr())
	return serveOn(ctx, ln, svc, func(context.Context) error { <-ctx.Done(); return ctx.Err() })
}

// runDrive serves the service on addr and drives load at it for d.
func runDrive(ctx context.Context, out io.Writer, addr string, d time.Duration) error {
	var outMu sync.Mutex
	svc, err := newService(nil, out, &outMu)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The burst of concurrent mutations needs as many connections at once.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	base := "http://" + ln.Addr().String()
	return serveOn(ctx, ln, svc, func(ctx context.Context) error {
		// Open the connections the burst needs before the clock starts, so
		// that dialing does not delay the first second's requests.
		warmUp(ctx, client, base+"/", 160)
		_, err := drive(ctx, driveConfig{Client: client, Base: base, Duration: d, Out: out, OutMu: &outMu})
		return err
	})
}

// warmUp sends n concurrent requests to url and waits for their answers.
func warmUp(ctx context.Context, client *http.Client, url string, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
			if err != nil {
				return
			}
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
}

// serveOn serves h on ln while run runs, then shuts the server down.
func serveOn(ctx context.Context, ln net.Listener, h http.Handler, run func(context.Context) error) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	runErr := run(ctx)
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && runErr == nil {
		runErr = err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = err
	}
	return runErr
}
