// loadgen replays a plan of HTTP requests with N concurrent keep-alive clients for a fixed
// duration and prints one JSON line of statistics. Standard library only.
//
//	loadgen -plan plan.json -c 16 -d 10s -ok 200,201,409
//
// The plan is a JSON array of {"method","url","headers","body"}; clients walk it round-robin
// from different offsets, so requests are spread over the whole plan.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type request struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

type result struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	Status   map[string]int `json:"status"`
}

func main() {
	planPath := flag.String("plan", "", "JSON file with the requests")
	conc := flag.Int("c", 8, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "duration")
	okList := flag.String("ok", "200,201,204", "statuses that count as success")
	flag.Parse()
	raw, err := os.ReadFile(*planPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	var plan []request
	if err := json.Unmarshal(raw, &plan); err != nil || len(plan) == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: plan must be a non-empty JSON array:", err)
		os.Exit(1)
	}
	ok := map[int]bool{}
	for _, s := range strings.Split(*okList, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			ok[n] = true
		}
	}
	transport := &http.Transport{MaxIdleConnsPerHost: *conc * 2, MaxConnsPerHost: *conc * 2}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	var mu sync.Mutex
	latencies := make([]time.Duration, 0, 1<<16)
	status := map[string]int{}
	var errors int64
	deadline := time.Now().Add(*dur)
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			localStatus := map[string]int{}
			for i := w * len(plan) / *conc; time.Now().Before(deadline); i++ {
				r := plan[i%len(plan)]
				var body io.Reader
				if len(r.Body) > 0 && string(r.Body) != "null" {
					body = bytes.NewReader(r.Body)
				}
				req, _ := http.NewRequest(r.Method, r.URL, body)
				for k, v := range r.Headers {
					req.Header.Set(k, v)
				}
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					atomic.AddInt64(&errors, 1)
					localStatus["error"]++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local = append(local, time.Since(start))
				localStatus[strconv.Itoa(resp.StatusCode)]++
				if !ok[resp.StatusCode] {
					atomic.AddInt64(&errors, 1)
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			for k, v := range localStatus {
				status[k] += v
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		idx := int(p * float64(len(latencies)-1))
		return float64(latencies[idx].Microseconds()) / 1000
	}
	out := result{
		Requests: len(latencies), Errors: int(errors), RPS: float64(len(latencies)) / dur.Seconds(),
		P50Ms: pct(0.50), P90Ms: pct(0.90), P99Ms: pct(0.99), MaxMs: pct(1.0), Status: status,
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
