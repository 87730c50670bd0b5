// Command cdw keeps a customer data warehouse up to date: it extracts orders,
// tickets and contacts into raw Parquet, builds customer marts with DuckDB SQL
// models, and publishes them for BI tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/internal/memtrim"
	"github.com/cdwhq/cdw/internal/secret"
)

// command is one subcommand: its flags are defined in setup, and run does the work.
type command struct {
	name    string
	summary string
	usage   string // argument synopsis after the command name
	setup   func(fs *pflag.FlagSet) func(ctx context.Context, args []string) error
	sub     []*command // subcommands (cdw bench exec …)
	// tables: stdout shows what the run did, so INFO logs would repeat it;
	// they show only with -v (or an explicit --log-level).
	tables bool
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("cdw: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	memtrim.Tune() // before DuckDB allocates
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a mistake in the command line (exit 2) rather than a failure
// of the work (exit 1).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// run is main without the exit, so tests can drive the CLI in-process.
func run(args []string, stdout, stderr io.Writer) int {
	out, errOut = stdout, stderr
	root := newRoot()
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(longFlags(root, args))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	name := "cdw"
	if c != nil && c != root {
		name = c.CommandPath()
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s (run '%s --help' for usage)\n", name, oneLine(err), name)
		return 2
	case c == root || c == nil:
		// cobra's own: an unknown command.
		fmt.Fprintf(stderr, "cdw: %s (run 'cdw --help' for the list)\n", oneLine(err))
		return 2
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, errorText(err))
	return 1
}

// newRoot builds the cobra command tree from the registered commands.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "cdw",
		Short:         "cdw keeps a customer data warehouse up to date.",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	logLevel := root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn or error")
	logFormat := root.PersistentFlags().String("log-format", "text", "log format: text or json")
	verbose := root.PersistentFlags().BoolP("verbose", "v", false, "log at INFO also where stdout already shows the result tables (run, demo, extract, test, seed, publish log only warnings by default)")
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		level := *logLevel
		if c.Annotations["tables"] != "" && !*verbose && !c.Flags().Changed("log-level") {
			level = "warn"
		}
		if err := setupLogging(c.ErrOrStderr(), level, *logFormat); err != nil {
			return usageError{err}
		}
		return nil
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	for _, c := range commands {
		root.AddCommand(c.cobra())
	}
	return root
}

func (c *command) cobra() *cobra.Command {
	cc := &cobra.Command{
		Use:   strings.TrimSpace(c.name + " " + c.usage),
		Short: c.summary,
		Long:  c.summary,
		// The commands check their own arguments, with messages that say what to give.
		Args: cobra.ArbitraryArgs,
	}
	if c.tables {
		cc.Annotations = map[string]string{"tables": "yes"}
	}
	if c.setup != nil {
		action := c.setup(cc.Flags())
		cc.RunE = func(cc *cobra.Command, args []string) error { return action(cc.Context(), args) }
	}
	for _, s := range c.sub {
		cc.AddCommand(s.cobra())
	}
	return cc
}

// longFlags rewrites Go-style single-dash long flags (-config x) as --config x,
// so command lines written for the flag package keep working: -h and -v stay
// shorthands, and nothing after "--" is touched.
func longFlags(root *cobra.Command, args []string) []string {
	names := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	res := make([]string, len(args))
	copy(res, args)
	for i, a := range res {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if names[name] && (len(name) > 1 || name == "n") {
			res[i] = "-" + a
		}
	}
	return res
}

var out, errOut io.Writer = os.Stdout, os.Stderr

func setupLogging(w io.Writer, level, format string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		slog.SetDefault(slog.New(secret.Handler(slog.NewTextHandler(w, opts))))
	case "json":
		slog.SetDefault(slog.New(secret.Handler(slog.NewJSONHandler(w, opts))))
	default:
		return fmt.Errorf("--log-format: %q is not text or json", format)
	}
	return nil
}

// sqlPosition is the "LINE 1: …" line under which DuckDB puts a caret.
var sqlPosition = regexp.MustCompile(`(?m)^LINE \d+:`)

// errorText is the error for the terminal: one line, except that DuckDB's
// "LINE n: SQL" and caret lines stay on their own lines so the caret points.
func errorText(err error) string {
	msg := secret.Scrub(err.Error())
	if !sqlPosition.MatchString(msg) {
		return oneLine(err)
	}
	var lines []string
	for l := range strings.Lines(msg) {
		if l = strings.TrimRight(l, " \t\r\n"); strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// oneLine folds a (possibly joined) error into one line for the terminal.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(secret.Scrub(err.Error()), "\n", "; ")), " ")
}
