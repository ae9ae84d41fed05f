#include <string>

#include "compiler/ast.h"

namespace govmesh::cedar {

namespace {

const char* binaryOp(ExprKind k) {
  switch (k) {
    case ExprKind::Eq: return "==";
    case ExprKind::Ne: return "!=";
    case ExprKind::Lt: return "<";
    case ExprKind::Le: return "<=";
    case ExprKind::Gt: return ">";
    case ExprKind::Ge: return ">=";
    case ExprKind::Add: return "+";
    case ExprKind::Sub: return "-";
    case ExprKind::Mul: return "*";
    case ExprKind::In: return "in";
    case ExprKind::And: return "&&";
    case ExprKind::Or: return "||";
    default: return nullptr;
  }
}

std::string quoted(const std::string& s) { return "\"" + escapeCedarString(s) + "\""; }

void print(const Expr& e, std::string& out) {
  switch (e.kind) {
    case ExprKind::Literal: {
      // Negative integers in parentheses so that `a - -1` and `-9223372036854775808` read back.
      std::string lit = toString(e.literal);
      if (e.literal.isLong() && e.literal.asLong() < 0) lit = "(" + lit + ")";
      out += lit;
      return;
    }
    case ExprKind::Variable: {
      static const char* const kNames[] = {"principal", "action", "resource", "context"};
      out += kNames[static_cast<int>(e.var)];
      return;
    }
    case ExprKind::Slot: out += e.slot == SlotId::Principal ? "?principal" : "?resource"; return;
    case ExprKind::If:
      out += "(if ";
      print(*e.kids[0], out);
      out += " then ";
      print(*e.kids[1], out);
      out += " else ";
      print(*e.kids[2], out);
      out += ")";
      return;
    case ExprKind::Not: out += "(!"; print(*e.kids[0], out); out += ")"; return;
    case ExprKind::Neg: out += "(-"; print(*e.kids[0], out); out += ")"; return;
    case ExprKind::GetAttr: out += "("; print(*e.kids[0], out); out += ")[" + quoted(e.name) + "]"; return;
    case ExprKind::HasAttr: out += "(("; print(*e.kids[0], out); out += ") has " + quoted(e.name) + ")"; return;
    case ExprKind::Is: out += "(("; print(*e.kids[0], out); out += ") is " + e.name + ")"; return;
    case ExprKind::Like: {
      out += "((";
      print(*e.kids[0], out);
      out += ") like \"";
      for (const PatternElem& p : e.pattern) out += p.wildcard ? "*" : (p.literal == "*" ? "\\*" : escapeCedarString(p.literal));
      out += "\")";
      return;
    }
    case ExprKind::SetLit:
      out += "[";
      for (size_t i = 0; i < e.kids.size(); ++i) {
        if (i) out += ", ";
        print(*e.kids[i], out);
      }
      out += "]";
      return;
    case ExprKind::RecordLit:
      out += "{";
      for (size_t i = 0; i < e.kids.size(); ++i) {
        if (i) out += ", ";
        out += quoted(e.fieldNames[i]) + ": ";
        print(*e.kids[i], out);
      }
      out += "}";
      return;
    case ExprKind::Call:
      out += e.name + "(";
      for (size_t i = 0; i < e.kids.size(); ++i) {
        if (i) out += ", ";
        print(*e.kids[i], out);
      }
      out += ")";
      return;
    case ExprKind::Method:
      out += "(";
      print(*e.kids[0], out);
      out += ")." + e.name + "(";
      for (size_t i = 1; i < e.kids.size(); ++i) {
        if (i > 1) out += ", ";
        print(*e.kids[i], out);
      }
      out += ")";
      return;
    default:
      if (const char* op = binaryOp(e.kind)) {
        out += "(";
        print(*e.kids[0], out);
        out += std::string(" ") + op + " ";
        print(*e.kids[1], out);
        out += ")";
      }
      return;
  }
}

}  // namespace

std::string toCedarText(const Expr& e) {
  std::string out;
  print(e, out);
  return out;
}

}  // namespace govmesh::cedar
