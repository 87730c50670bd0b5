package main

import (
	"context"
	"log/slog"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/load/alert"
	"github.com/cdwhq/cdw/load/report"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/pipelines/schedule"
)

// checkedConfig is cdw.yaml with every component's settings checked.
type checkedConfig struct {
	*pipelines.Config
	targets   int // publish targets (the defaults when none are listed)
	pipelines int // entries of pipelines:
}

// loadConfig reads cdw.yaml and checks every component's settings before
// anything runs: each source's options (its kind opens it, which connects to
// nothing), the publish targets, report/smtp, alerts and serve/pipelines. A typo
// anywhere fails in the first second with file:line:key instead of after
// minutes of extract. Sources need their secrets' environment variables set.
func loadConfig(ctx context.Context, path string) (*checkedConfig, error) {
	cfg, err := pipelines.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	c := &checkedConfig{Config: cfg}
	for _, sc := range cfg.Sources {
		kind, err := extract.LookupKind(sc.Kind)
		if err != nil {
			return nil, sc.Options.Errorf("source %s: %v", sc.Name, err)
		}
		src, err := kind.Open(ctx, extract.SourceConfig{Name: sc.Name, Options: sc.Options, BaseDir: cfg.BaseDir,
			Log: slog.Default().With("source", sc.Name)})
		if err != nil {
			return nil, err
		}
		src.Close()
	}
	targets, err := (&pipelines.Runner{Cfg: cfg}).PublishTargets()
	if err != nil {
		return nil, err
	}
	c.targets = len(targets)
	if cfg.Report.Y != nil || cfg.SMTP.Y != nil {
		if _, err := report.ParseConfig(cfg.Report, cfg.SMTP, cfg.Warehouse, cfg.BaseDir); err != nil {
			return nil, err
		}
	}
	if cfg.Alerts.Y != nil {
		if _, err := alert.ParseConfig(cfg.Alerts, cfg.Report, cfg.SMTP, cfg.Warehouse, cfg.BaseDir); err != nil {
			return nil, err
		}
	}
	// serve: is read with pipelines: (without them there is nothing to
	// serve, which cdw serve itself reports; run and extract do not need it).
	if cfg.Pipelines.Y != nil {
		sc, err := schedule.ParseConfig(cfg)
		if err != nil {
			return nil, err
		}
		c.pipelines = len(sc.Pipelines)
	}
	return c, nil
}

// loadChecked is loadConfig for the commands that run pipelines (run,
// extract, serve, demo): the config, checked whole.
func loadChecked(ctx context.Context, path string) (*pipelines.Config, error) {
	c, err := loadConfig(ctx, path)
	if err != nil {
		return nil, err
	}
	return c.Config, nil
}
