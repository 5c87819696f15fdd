module github.com/plb/plb

go 1.26.8

require (
	github.com/BurntSushi/toml v1.4.0
	github.com/panjf2000/gnet/v2 v2.10.0
	golang.org/x/sys v0.30.0
)

require (
	go.uber.org/multierr v1.11.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	gopkg.in/natefinch/lumberjack.v2 v2.2.1 // indirect
)
