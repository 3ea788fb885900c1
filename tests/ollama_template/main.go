// Renders Ollama Modelfile TEMPLATEs with Go's text/template, as Ollama does: the template gets .Messages (Role,
// Content), .System, .Prompt and .Response. Input on stdin: {"template": "...", "cases": [{"messages": [...]}]};
// output on stdout: a JSON array with one rendered prompt per case. Used by tests/test_gguf_modelfile.py.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"
)

type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type Values struct {
	Messages []Message `json:"messages"`
	System   string    `json:"system"`
	Prompt   string    `json:"prompt"`
	Response string    `json:"response"`
}

type Input struct {
	Template string   `json:"template"`
	Cases    []Values `json:"cases"`
}

func main() {
	var in Input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "bad input:", err)
		os.Exit(2)
	}
	// Ollama's own template functions (json, currentDate...) are not used by our templates; Go's builtins are.
	tmpl, err := template.New("Modelfile").Option("missingkey=zero").Parse(in.Template)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parse:", err)
		os.Exit(1)
	}
	out := []string{}
	for _, c := range in.Cases {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, c); err != nil {
			fmt.Fprintln(os.Stderr, "execute:", err)
			os.Exit(1)
		}
		out = append(out, b.String())
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
}
