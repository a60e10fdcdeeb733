package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// JSON writes r as indented JSON with the field names of Report.
func JSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// HTML writes r as one self-contained HTML document: inline styles only (mail
// clients drop <style> blocks and external sheets), tables for layout, and
// every value escaped by html/template.
func HTML(w io.Writer, r Report) error {
	var buf bytes.Buffer
	if err := page.Execute(&buf, r); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Text writes r as plain text, the alternative part of a report mail.
func Text(w io.Writer, r Report) error {
	var b strings.Builder
	t := r.Totals
	fmt.Fprintf(&b, "Cairn daily report for %s (%s)\n\n", r.Date, r.TimeZone)
	fmt.Fprintf(&b, "Objects: %d  succeeded: %d  failed: %d  none: %d  without a successful backup: %d\n",
		t.Objects, t.Succeeded, t.Failed, t.None, t.NoSuccess)
	fmt.Fprintf(&b, "Backups: %d  read: %s  stored: %s  dedupe: %s  restore points: %d\n\n",
		t.Backups, bytesText(t.ReadBytes), bytesText(t.StoredBytes), ratioText(t.DedupeRatio), t.RestorePoints)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE/OBJECT\tRESULT\tLAST BACKUP\tDURATION\tREAD\tSTORED\tDEDUPE\tPOINTS\t")
	for _, o := range r.Objects {
		flag := ""
		if o.NoSuccess {
			flag = " !"
		}
		fmt.Fprintf(tw, "%s/%s\t%s%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", o.Source, o.Object, o.Result, flag,
			timeText(o.LastBackup, r.Start.Location()), durationText(o.DurationSeconds), bytesText(o.ReadBytes),
			bytesText(o.StoredBytes), ratioText(o.DedupeRatio), o.RestorePoints)
	}
	tw.Flush()
	if t.NoSuccess > 0 {
		b.WriteString("\n! no successful backup in the period\n")
	}
	if t.Failures > 0 {
		b.WriteString("\nFailures:\n")
		for _, o := range r.Objects {
			for _, f := range o.Failures {
				fmt.Fprintf(&b, "  %s/%s job %s %s at %s: %s\n", o.Source, o.Object, f.Job, f.State,
					timeText(f.Finished, r.Start.Location()), oneLine(f.Error))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Subject is the mail subject of r: the counts an admin scans for.
func Subject(r Report) string {
	t := r.Totals
	state := "OK"
	if t.Failed > 0 || t.NoSuccess > 0 {
		state = "ATTENTION"
	}
	return fmt.Sprintf("Cairn daily report %s: %s, %d succeeded, %d failed, %d without a backup",
		r.Date, state, t.Succeeded, t.Failed, t.NoSuccess)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func ratioText(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx", *r)
}

func durationText(s float64) string {
	if s <= 0 {
		return "-"
	}
	d := time.Duration(s * float64(time.Second))
	if d < 10*time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func timeText(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "never"
	}
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes":    bytesText,
	"ratio":    ratioText,
	"duration": durationText,
	"time":     func(t time.Time, r Report) string { return timeText(t, r.Start.Location()) },
	"subject":  Subject,
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{subject .}}</title></head>
<body style="margin:0;padding:16px;background:#f4f4f4;font-family:Helvetica,Arial,sans-serif;font-size:14px;color:#222">
<table role="presentation" cellpadding="0" cellspacing="0" style="width:100%;max-width:960px;background:#fff;border:1px solid #ddd">
<tr><td style="padding:16px">
<h1 style="font-size:20px;margin:0 0 8px 0">Cairn daily report {{.Date}}</h1>
<p style="margin:0 0 12px 0;color:#555">{{.TimeZone}}, {{time .Start .}} to {{time .End .}}; generated {{time .Generated .}}</p>
{{with .Totals}}<table role="presentation" cellpadding="6" cellspacing="0" style="border-collapse:collapse;margin-bottom:16px">
<tr>
<td style="background:#e8f5e9;border:1px solid #c8e6c9"><b>{{.Succeeded}}</b> succeeded</td>
<td style="background:{{if .Failed}}#ffebee{{else}}#f5f5f5{{end}};border:1px solid #ddd"><b>{{.Failed}}</b> failed</td>
<td style="background:{{if .NoSuccess}}#fff3e0{{else}}#f5f5f5{{end}};border:1px solid #ddd"><b>{{.NoSuccess}}</b> without a successful backup</td>
<td style="border:1px solid #ddd">{{.Backups}} backups, read {{bytes .ReadBytes}}, stored {{bytes .StoredBytes}}, dedupe {{ratio .DedupeRatio}}, {{.RestorePoints}} restore points</td>
</tr></table>{{end}}
<table cellpadding="6" cellspacing="0" style="border-collapse:collapse;width:100%;font-size:13px">
<tr style="background:#333;color:#fff;text-align:left">
<th>Source/object</th><th>Result</th><th>Last backup</th><th>Duration</th><th style="text-align:right">Read</th><th style="text-align:right">Stored</th><th style="text-align:right">Dedupe</th><th style="text-align:right">Restore points</th>
</tr>
{{range .Objects}}<tr style="border-bottom:1px solid #eee;background:{{if eq .Result "failed"}}#ffebee{{else if .NoSuccess}}#fff3e0{{else}}#fff{{end}}">
<td>{{.Source}}/{{.Object}}</td>
<td><b style="color:{{if eq .Result "succeeded"}}#2e7d32{{else if eq .Result "failed"}}#c62828{{else}}#777{{end}}">{{.Result}}</b>{{if .NoSuccess}} <span style="color:#e65100">(no successful backup)</span>{{end}}</td>
<td>{{time .LastBackup $}}</td><td>{{duration .DurationSeconds}}</td>
<td style="text-align:right">{{bytes .ReadBytes}}</td><td style="text-align:right">{{bytes .StoredBytes}}</td>
<td style="text-align:right">{{ratio .DedupeRatio}}</td><td style="text-align:right">{{.RestorePoints}}</td>
</tr>
{{else}}<tr><td colspan="8" style="color:#777">No objects have been backed up.</td></tr>
{{end}}</table>
{{if .Totals.Failures}}<h2 style="font-size:16px;margin:16px 0 8px 0;color:#c62828">Failures</h2>
<table cellpadding="6" cellspacing="0" style="border-collapse:collapse;width:100%;font-size:13px">
<tr style="background:#333;color:#fff;text-align:left"><th>Source/object</th><th>Job</th><th>State</th><th>Finished</th><th>Error</th></tr>
{{range $o := .Objects}}{{range .Failures}}<tr style="border-bottom:1px solid #eee">
<td>{{$o.Source}}/{{$o.Object}}</td><td>{{.Job}}</td><td>{{.State}}</td><td>{{time .Finished $}}</td><td style="font-family:monospace">{{.Error}}</td>
</tr>
{{end}}{{end}}</table>{{end}}
</td></tr></table>
</body></html>
`
