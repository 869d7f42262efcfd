package config

import "strings"

// Node is one statement of a keepalived configuration: a keyword, its
// arguments on the same line, and the statements of its { } block if it
// has one. Value blocks (virtual_ipaddress, notification_email, ...) are
// blocks whose statements are the values.
type Node struct {
	Pos      Pos
	Name     string
	Args     []string
	HasBlock bool
	Block    []*Node
}

// String renders the keyword and its arguments as written.
func (n *Node) String() string {
	if len(n.Args) == 0 {
		return n.Name
	}
	return n.Name + " " + strings.Join(n.Args, " ")
}

// Words returns the keyword and its arguments.
func (n *Node) Words() []string { return append([]string{n.Name}, n.Args...) }

type frame struct {
	node *Node
	list *[]*Node
}

// buildTree turns tokens into statements. A '{' opens a block for the
// statement before it (on the same or an earlier line, as keepalived
// accepts "keyword\n{"), a '}' closes the innermost block.
func buildTree(d *diag, toks []token) []*Node {
	var root []*Node
	var discard []*Node
	stack := []frame{{list: &root}}
	var cur, last *Node
	for _, t := range toks {
		top := &stack[len(stack)-1]
		switch t.kind {
		case tWord:
			if cur == nil {
				cur = &Node{Pos: t.pos, Name: t.text}
				*top.list = append(*top.list, cur)
				last = cur
			} else {
				cur.Args = append(cur.Args, t.text)
			}
		case tEOL:
			cur = nil
		case tLBrace:
			cur = nil
			if last == nil || last.HasBlock {
				d.errorf(t.pos, "unexpected '{': a block must follow the keyword it belongs to")
				discard = discard[:0]
				stack = append(stack, frame{list: &discard})
			} else {
				last.HasBlock = true
				stack = append(stack, frame{node: last, list: &last.Block})
			}
			last = nil
		case tRBrace:
			cur, last = nil, nil
			if len(stack) == 1 {
				d.errorf(t.pos, "extra '}': no block is open here")
				continue
			}
			stack = stack[:len(stack)-1]
		}
	}
	for i := len(stack) - 1; i > 0; i-- {
		if n := stack[i].node; n != nil {
			d.errorf(n.Pos, "missing '}': the %s block opened here is not closed", n.Name)
		}
	}
	return root
}
