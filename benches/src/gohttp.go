// The network service workload of `rvisor bench`: a net/http server on loopback (127.0.0.1)
// and its own client goroutines in one program, standard library only. Usage: gohttp
// REQUESTS CLIENTS. CLIENTS goroutines share REQUESTS GETs of a 1 KiB body over keep-alive
// connections (each request bounded by a 30 s timeout), then it prints one JSON line:
// requests, clients, secs, rps, p50_us, p99_us.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gohttp:", err)
	os.Exit(1)
}

func arg(i, def int) int {
	if len(os.Args) > i {
		if v, err := strconv.Atoi(os.Args[i]); err == nil && v > 0 {
			return v
		}
	}
	return def
}

func main() {
	n, c := arg(1, 2000), arg(2, 8)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'x'
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})}
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String() + "/"
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, DisableCompression: true},
		Timeout:   30 * time.Second,
	}
	lat := make([][]time.Duration, c)
	var next int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	start := time.Now()
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for atomic.AddInt64(&next, 1) <= int64(n) {
				t := time.Now()
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					once.Do(func() { first = err })
					return
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		}(i)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if first != nil {
		fail(first)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	q := func(p float64) float64 {
		return float64(all[int(p*float64(len(all)-1))].Nanoseconds()) / 1000
	}
	out, _ := json.Marshal(map[string]any{
		"requests": len(all), "clients": c, "secs": secs,
		"rps": float64(len(all)) / secs, "p50_us": q(0.5), "p99_us": q(0.99),
	})
	fmt.Println(string(out))
}
