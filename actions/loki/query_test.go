package loki

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

var update = flag.Bool("update", false, "rewrite golden files")

// ns is the Loki timestamp of testNow minus d.
func ns(d time.Duration) string { return strconv.FormatInt(testNow.Add(-d).UnixNano(), 10) }

// streamsBody is a query_range answer shaped like Loki's documentation:
// two streams, values newest first within each, and query statistics.
func streamsBody() string {
	return `{"status":"success","data":{"resultType":"streams","result":[
{"stream":{"app":"checkout","pod":"checkout-7f9c-abcde","namespace":"prod"},"values":[
 ["` + ns(1*time.Minute) + `","level=error msg=\"upstream timeout\" Authorization: Bearer ` + "abc123def456ghi" + `"],
 ["` + ns(5*time.Minute) + `","level=warn msg=\"slow response\" duration=2.3s"],
 ["` + ns(9*time.Minute) + `","{\"level\":\"error\",\"msg\":\"db: connect postgres://app:hunter2@db:5432/orders failed\"}"]]},
{"stream":{"app":"checkout","pod":"checkout-7f9c-fghij","namespace":"prod"},"values":[
 ["` + ns(2*time.Minute) + `","ERROR payment declined\nstack line 1\n\tstack line 2"],
 ["` + ns(7*time.Minute) + `","` + strings.Repeat("x", 300) + `"],
 ["` + ns(8*time.Minute) + `","plain line without a level"]]}
],"stats":{"summary":{"bytesProcessedPerSecond":1024,"linesProcessedPerSecond":10,"totalBytesProcessed":600,"totalLinesProcessed":6,"execTime":0.01}}}}`
}

func TestQueryParameters(t *testing.T) {
	f := newFakeLoki(t, jsonAnswer(streamsBody()))
	q, _ := newQuery(t, f, nil)
	if _, err := run(q, action.Params{"service": "checkout", "filter": "timeout", "window": "15m", "limit": 50}); err != nil {
		t.Fatal(err)
	}
	r := f.last()
	v := r.URL.Query()
	want := map[string]string{
		"query":     `{app="checkout"} |= "timeout"`,
		"limit":     "50",
		"start":     strconv.FormatInt(testNow.Add(-15*time.Minute).UnixNano(), 10),
		"end":       strconv.FormatInt(testNow.UnixNano(), 10),
		"direction": "backward",
	}
	for k, w := range want {
		if got := v.Get(k); got != w {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
	if len(v) != len(want) {
		t.Errorf("Loki received parameters %v, want exactly %v", v, want)
	}
	if got := r.Header.Get("X-Scope-OrgID"); got != "team-a" {
		t.Errorf("X-Scope-OrgID = %q", got)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		t.Errorf("Authorization header not sent as a bearer token")
	}

	// Defaults: 1h window, 20 lines.
	if _, err := run(q, action.Params{"service": "checkout"}); err != nil {
		t.Fatal(err)
	}
	v = f.last().URL.Query()
	if v.Get("limit") != "20" || v.Get("start") != strconv.FormatInt(testNow.Add(-time.Hour).UnixNano(), 10) {
		t.Errorf("defaults: limit %s start %s", v.Get("limit"), v.Get("start"))
	}
}

func TestBasicAuthFromURL(t *testing.T) {
	f := newFakeLoki(t, jsonAnswer(streamsBody()))
	u, _ := url.Parse(f.srv.URL + "/")
	u.User = url.UserPassword("parley", testPassword)
	q, _ := newQuery(t, f, func(o *Options) { o.URL, o.BearerToken, o.TenantID = u.String(), "", "" })
	if _, err := run(q, action.Params{"service": "checkout"}); err != nil {
		t.Fatal(err)
	}
	r := f.last()
	user, pass, ok := r.BasicAuth()
	if !ok || user != "parley" || pass != testPassword {
		t.Errorf("basic auth not sent from the URL's user info")
	}
	if r.Header.Get("X-Scope-OrgID") != "" {
		t.Errorf("X-Scope-OrgID sent without a tenant")
	}
}

// TestStreamsReply checks the whole reply against a golden file.
func TestStreamsReply(t *testing.T) {
	f := newFakeLoki(t, jsonAnswer(streamsBody()))
	q, _ := newQuery(t, f, nil)
	res, err := run(q, action.Params{"service": "checkout", "level": "error", "window": "15m"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "streams.golden", res)

	got := fmt.Sprint(res)
	for _, secret := range []string{"abc123def456ghi", "hunter2"} {
		if strings.Contains(got, secret) {
			t.Errorf("reply shows the secret %q", secret)
		}
	}
	if res.Table == nil || len(res.Table.Rows) != 6 {
		t.Fatalf("want 6 rows, got %+v", res.Table)
	}
	for i, row := range res.Table.Rows {
		if len(row[2]) > maxLineLen {
			t.Errorf("row %d line is %d bytes", i, len(row[2]))
		}
		if strings.ContainsAny(row[2], "\n\t") {
			t.Errorf("row %d line spans lines: %q", i, row[2])
		}
	}
	if !strings.Contains(res.Text, "error 3, warn 1, other 2") {
		t.Errorf("level counts missing from %q", res.Text)
	}
}

func TestExploreLink(t *testing.T) {
	f := newFakeLoki(t, jsonAnswer(streamsBody()))
	q, _ := newQuery(t, f, func(o *Options) { o.GrafanaURL, o.GrafanaDatasource = "https://grafana.example.com/", "loki-uid" })
	res, err := run(q, action.Params{"service": "checkout", "filter": `a "b" c`, "window": "15m"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Fields) != 1 || res.Fields[0].Label != "Grafana Explore" {
		t.Fatalf("fields = %+v", res.Fields)
	}
	link, err := url.Parse(res.Fields[0].Value)
	if err != nil || link.Host != "grafana.example.com" || link.Path != "/explore" {
		t.Fatalf("link %q (%v)", res.Fields[0].Value, err)
	}
	var st exploreState
	if err := json.Unmarshal([]byte(link.Query().Get("left")), &st); err != nil {
		t.Fatalf("left pane state: %v", err)
	}
	if st.Datasource != "loki-uid" || len(st.Queries) != 1 || st.Queries[0].Expr != res.Code ||
		st.Range.From != strconv.FormatInt(testNow.Add(-15*time.Minute).UnixMilli(), 10) ||
		st.Range.To != strconv.FormatInt(testNow.UnixMilli(), 10) {
		t.Errorf("explore state %+v does not match the query %s", st, res.Code)
	}
	if strings.Contains(res.Text, "Paste this LogQL") {
		t.Errorf("paste hint shown although a link is there")
	}
}

func TestManyLinesAndLimit(t *testing.T) {
	var vals []string
	for i := range 60 {
		vals = append(vals, fmt.Sprintf(`["%s","line %d"]`, ns(time.Duration(i)*time.Second), i))
	}
	body := `{"status":"success","data":{"resultType":"streams","result":[{"stream":{"app":"x"},"values":[` + strings.Join(vals, ",") + `]}]}}`
	f := newFakeLoki(t, jsonAnswer(body))
	q, _ := newQuery(t, f, nil)

	// Loki returned more than asked (it should not): the limit holds.
	res, err := run(q, action.Params{"service": "x", "limit": 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Table.Rows) != 10 || res.Table.Rows[0][2] != "line 0" || res.Outcome["lines"] != "10" {
		t.Errorf("limit 10: rows %d, first %v, outcome %v", len(res.Table.Rows), res.Table.Rows[0], res.Outcome)
	}
	if !strings.Contains(res.Text, "limit of 10 lines was reached") {
		t.Errorf("no limit note in %q", res.Text)
	}

	res, err = run(q, action.Params{"service": "x", "limit": 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Table.Rows) != maxChatLines || !strings.Contains(res.Text, "Showing the newest 30; 30 more not shown here.") {
		t.Errorf("rows %d, text %q", len(res.Table.Rows), res.Text)
	}
}

func TestNoLines(t *testing.T) {
	f := newFakeLoki(t, jsonAnswer(`{"status":"success","data":{"resultType":"streams","result":[]}}`))
	q, _ := newQuery(t, f, nil)
	res, err := run(q, action.Params{"service": "payments", "level": "error", "window": "30m"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, "No payments error logs matched in the last 30m.") || res.Table != nil || res.Code == "" {
		t.Errorf("reply %+v", res)
	}
}

func TestMatrixReply(t *testing.T) {
	t0 := float64(testNow.Add(-10 * time.Minute).Unix())
	body := fmt.Sprintf(`{"status":"success","data":{"resultType":"matrix","result":[
{"metric":{"app":"checkout"},"values":[[%.0f,"1"],[%.0f,"4.5"],[%.0f,"2"]]},
{"metric":{"app":"payments"},"values":[[%.0f,"0.25"],[%.0f,"7"]]},
{"metric":{},"values":[[%.0f,"NaN"]]}
],"stats":{}},"warnings":["query timed out on one querier; partial results"]}`, t0, t0+60, t0+120, t0, t0+60, t0)
	f := newFakeLoki(t, jsonAnswer(body))
	q, _ := newQuery(t, f, nil)
	res, err := run(q, action.Params{"query": `sum by (app) (rate({app=~".+"} |= "error" [5m]))`, "window": "15m"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "matrix.golden", res)
	if !strings.Contains(res.Text, "partial") {
		t.Errorf("warning not shown: %q", res.Text)
	}
}

func TestVectorReply(t *testing.T) {
	body := fmt.Sprintf(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"level":"error"},"value":[%d,"12"]}]}}`, testNow.Unix())
	f := newFakeLoki(t, jsonAnswer(body))
	q, _ := newQuery(t, f, nil)
	res, err := run(q, action.Params{"query": `sum by (level) (count_over_time({app="x"}[1h]))`})
	if err != nil {
		t.Fatal(err)
	}
	if res.Table == nil || len(res.Table.Rows) != 1 || res.Table.Rows[0][0] != `{level="error"}` || res.Table.Rows[0][1] != "12" {
		t.Errorf("vector table %+v", res.Table)
	}
}

func TestErrors(t *testing.T) {
	hugeLine := strings.Repeat("y", 1<<20)
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		kind   error
		want   string
	}{
		{"parse error", textAnswer(400, "parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting STRING\n"),
			action.ErrInvalid, "Loki rejected the query: parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting STRING"},
		{"rate limited", textAnswer(429, "too many outstanding requests"), action.ErrUnavailable, "rate limiting"},
		{"server error", textAnswer(500, "internal error"), action.ErrUnavailable, "HTTP 500: internal error"},
		{"bad gateway", textAnswer(502, "<html>bad gateway</html>"), action.ErrUnavailable, "HTTP 502"},
		{"unauthorized", textAnswer(401, "no org id"), action.ErrForbidden, "HTTP 401"},
		{"garbage", jsonAnswer(`{"status":"success","data":`), action.ErrUnavailable, "not a query result"},
		{"not json", textAnswer(200, "<html>login</html>"), action.ErrUnavailable, "not a query result"},
		{"error status", jsonAnswer(`{"status":"error","errorType":"bad_data","error":"max entries limit per query exceeded"}`), action.ErrUnavailable, "max entries limit"},
		{"huge", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"streams","result":[{"stream":{"app":"x"},"values":[`))
			for i := range 10 {
				if i > 0 {
					_, _ = w.Write([]byte(","))
				}
				_, _ = w.Write([]byte(`["1","` + hugeLine + `"]`))
			}
			_, _ = w.Write([]byte(`]}]}}`))
		}, action.ErrUnavailable, "larger than 8 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLoki(t, tc.answer)
			q, logs := newQuery(t, f, nil)
			_, err := run(q, action.Params{"service": "checkout"})
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.kind, tc.want)
			}
			noSecrets(t, "error", err.Error())
			noSecrets(t, "log", logs.String())
		})
	}
}

// TestHangingLoki checks the deadline: a Loki that never answers yields
// ErrUnavailable, and the request is cancelled, not left running.
func TestHangingLoki(t *testing.T) {
	released := make(chan struct{})
	f := newFakeLoki(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // hang until the client gives up
		close(released)
	})
	q, logs := newQuery(t, f, func(o *Options) { o.Timeout = 100 * time.Millisecond })
	_, err := run(q, action.Params{"service": "checkout"})
	if !errors.Is(err, action.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer within 100ms") {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("the request to Loki was not cancelled")
	}
	noSecrets(t, "error", err.Error())
	noSecrets(t, "log", logs.String())
}

func TestCallerCancels(t *testing.T) {
	f := newFakeLoki(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	q, _ := newQuery(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := q.Run(ctx, action.Request{Params: action.Params{"service": "x"}})
	if !errors.Is(err, action.ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	f := newFakeLoki(t, jsonAnswer(`{}`))
	q, _ := newQuery(t, f, nil)
	f.srv.Close()
	_, err := run(q, action.Params{"service": "x"})
	if !errors.Is(err, action.ErrUnavailable) || !strings.Contains(err.Error(), "cannot reach Loki at 127.0.0.1") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), "query_range?") {
		t.Errorf("error repeats the whole URL: %v", err)
	}
}

func TestNotConfigured(t *testing.T) {
	q := New(Options{})
	_, err := q.Run(context.Background(), action.Request{Params: action.Params{"service": "x"}})
	if !errors.Is(err, action.ErrNotConfigured) || !strings.Contains(err.Error(), "loki.url") {
		t.Errorf("err = %v", err)
	}
	if q.Spec().Name != action.LokiQuery {
		t.Errorf("spec %q", q.Spec().Name)
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("an empty URL is a valid (unconfigured) setup: %v", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"scheme", Options{URL: "loki:3100"}, "http(s) URL"},
		{"both auths", Options{URL: "http://l", BearerToken: testToken, Password: testPassword}, "either a bearer token"},
		{"limit", Options{URL: "http://l", DefaultLimit: 9000}, "default limit"},
		{"label", Options{URL: "http://l", LevelLabel: "le vel"}, "not a valid label"},
		{"grafana half", Options{URL: "http://l", GrafanaURL: "https://g"}, "both the Grafana URL"},
		{"template syntax", Options{URL: "http://l", Selector: `{app="{{.Service"}`}, "selector template"},
		{"template field", Options{URL: "http://l", Selector: `{app="{{.Name}}"}`}, "selector template"},
		{"not a selector", Options{URL: "http://l", Selector: `app="{{.Service}}"`}, "stream selector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			noSecrets(t, "error", err.Error())
			_, runErr := New(tc.o).Run(context.Background(), action.Request{Params: action.Params{"service": "x"}})
			if !errors.Is(runErr, action.ErrNotConfigured) {
				t.Errorf("Run = %v, want ErrNotConfigured", runErr)
			}
		})
	}
}

// golden compares res with testdata/name; -update rewrites it.
func golden(t *testing.T, name string, res action.Result) {
	t.Helper()
	got, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run with -update after checking):\n%s", path, got)
	}
}
