module example.com/svc

go 1.22

toolchain go1.22.4

require (
	github.com/BurntSushi/toml v1.3.2
	github.com/pkg/errors v0.9.1 // indirect
	golang.org/x/text v0.14.0
	example.com/local v0.0.0
)

require gopkg.in/yaml.v3 v3.0.1

replace golang.org/x/text => golang.org/x/text v0.15.0

replace example.com/local => ../local
