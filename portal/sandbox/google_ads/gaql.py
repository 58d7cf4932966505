"""Enough of the Google Ads Query Language for the sandbox: ``SELECT fields FROM resource [WHERE condition [AND
condition]…] [ORDER BY …] [LIMIT n]`` with ``= != > >= < <= IN NOT IN BETWEEN … AND … DURING``, string, number,
boolean and enum literals. Anything else is a `QueryProblem` named by a QueryError enum value (Google's
QueryErrorEnum.QueryError)."""
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

TOKEN = re.compile(r"""\s*(?:(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)"""
                   r"""|(?P<op>!=|>=|<=|=|>|<|\(|\)|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))""")
DURING_DAYS = {"TODAY": (0, 0), "YESTERDAY": (1, 1), "LAST_7_DAYS": (7, 1), "LAST_14_DAYS": (14, 1),
               "LAST_30_DAYS": (30, 1)}
KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "ORDER", "BY", "LIMIT", "IN", "NOT", "BETWEEN", "DURING", "ASC", "DESC",
            "PARAMETERS"}


class QueryProblem(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Condition:
    field: str
    operator: str  # "=", "!=", ">", ">=", "<", "<=", "IN", "NOT IN", "BETWEEN", "DURING"
    values: list = field(default_factory=list)


@dataclass
class Query:
    fields: list[str]
    resource: str
    conditions: list[Condition]
    limit: int | None = None


def tokens_of(text: str) -> list[tuple[str, object]]:
    position, found = 0, []
    text = text.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise QueryProblem("BAD_SYMBOL", f"Error in query: unexpected input {text[position:position + 20]!r}.")
        position = match.end()
        if match.group("string") is not None:
            found.append(("value", match.group("string")[1:-1]))
        elif match.group("number") is not None:
            number = match.group("number")
            if len(number) > 30:
                raise QueryProblem("BAD_NUMBER", "Error in query: a number is too long.")
            found.append(("value", float(number) if "." in number else int(number)))
        elif match.group("op") is not None:
            found.append(("op", match.group("op")))
        else:
            word = match.group("word")
            if word.upper() in KEYWORDS:
                found.append(("keyword", word.upper()))
            elif word.upper() in ("TRUE", "FALSE"):
                found.append(("value", word.upper() == "TRUE"))
            else:
                found.append(("word", word))
    return found


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokens_of(text)
        self.position = 0

    def peek(self) -> tuple[str, object] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str | None = None, value: object = None, reason: str = "QUERY_ERROR") -> object:
        token = self.peek()
        if token is None:
            raise QueryProblem("UNEXPECTED_END_OF_QUERY", "Error in query: unexpected end of query.")
        if (kind and token[0] != kind) or (value is not None and token[1] != value):
            raise QueryProblem(reason, f"Error in query: unexpected {token[1]!r}.")
        self.position += 1
        return token[1]

    def parse(self) -> Query:
        self.take("keyword", "SELECT", "EXPECTED_SELECT" if self.peek() else "UNEXPECTED_END_OF_QUERY")
        fields = [self.take("word", reason="BAD_FIELD_NAME")]
        while self.peek() == ("op", ","):
            self.take()
            fields.append(self.take("word", reason="BAD_FIELD_NAME"))
        self.take("keyword", "FROM", "EXPECTED_FROM")
        resource = self.take("word", reason="BAD_RESOURCE_TYPE_IN_FROM_CLAUSE")
        conditions, limit = [], None
        if self.peek() == ("keyword", "WHERE"):
            self.take()
            conditions.append(self.condition())
            while self.peek() == ("keyword", "AND"):
                self.take()
                conditions.append(self.condition())
        if self.peek() == ("keyword", "ORDER"):
            self.take()
            self.take("keyword", "BY", "EXPECTED_BY")
            while True:
                self.take("word", reason="BAD_FIELD_NAME")
                if self.peek() in (("keyword", "ASC"), ("keyword", "DESC")):
                    self.take()
                if self.peek() != ("op", ","):
                    break
                self.take()
        if self.peek() == ("keyword", "LIMIT"):
            self.take()
            limit = self.take("value", reason="BAD_LIMIT_VALUE")
            if not isinstance(limit, int) or limit < 1:
                raise QueryProblem("BAD_LIMIT_VALUE", "Error in query: LIMIT must be a positive whole number.")
        if self.peek() is not None:
            raise QueryProblem("QUERY_ERROR", f"Error in query: unexpected {self.peek()[1]!r}.")
        return Query(fields=fields, resource=resource, conditions=conditions, limit=limit)

    def literal(self) -> object:
        token = self.peek()
        if token and token[0] in ("value", "word"):
            self.position += 1
            return token[1]
        raise QueryProblem("BAD_VALUE", "Error in query: a value was expected.")

    def condition(self) -> Condition:
        name = self.take("word", reason="BAD_FIELD_NAME")
        token = self.peek()
        if token == ("keyword", "BETWEEN"):
            self.take()
            low = self.literal()
            self.take("keyword", "AND", "EXPECTED_AND")
            return Condition(name, "BETWEEN", [low, self.literal()])
        if token == ("keyword", "DURING"):
            self.take()
            constant = self.take("word", reason="BAD_ENUM_CONSTANT")
            if constant not in DURING_DAYS:
                raise QueryProblem("BAD_ENUM_CONSTANT", f"Error in query: unknown date range {constant!r}.")
            return Condition(name, "DURING", [constant])
        if token in (("keyword", "IN"), ("keyword", "NOT")):
            operator = "IN" if self.take() == "IN" else (self.take("keyword", "IN", "BAD_OPERATOR") and "NOT IN")
            self.take("op", "(", "EXPECTED_OPENING_PARENTHESIS")
            values = [self.literal()]
            while self.peek() == ("op", ","):
                self.take()
                values.append(self.literal())
            self.take("op", ")", "EXPECTED_CLOSING_PARENTHESIS")
            return Condition(name, operator, values)
        operator = self.take("op", reason="BAD_OPERATOR")
        if operator not in ("=", "!=", ">", ">=", "<", "<="):
            raise QueryProblem("BAD_OPERATOR", f"Error in query: unexpected operator {operator!r}.")
        return Condition(name, operator, [self.literal()])


def parse(text: str) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise QueryProblem("UNEXPECTED_END_OF_QUERY", "The query is empty.")
    return Parser(text).parse()


def as_date(value: object) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise QueryProblem("BAD_VALUE", f"Error in query: {value!r} is not a date (YYYY-MM-DD).") from None


def date_range(conditions: list[Condition], today: date) -> tuple[date, date] | None:
    """The finite range the `segments.date` filters allow, None when they leave it open."""
    low = high = None
    for condition in conditions:
        if condition.field != "segments.date":
            continue
        values = condition.values
        if condition.operator == "BETWEEN":
            low, high = max_date(low, as_date(values[0])), min_date(high, as_date(values[1]))
        elif condition.operator == "DURING":
            back, end_back = DURING_DAYS[values[0]]
            low, high = max_date(low, today - timedelta(days=back)), min_date(high, today - timedelta(days=end_back))
        elif condition.operator == "=":
            low, high = max_date(low, as_date(values[0])), min_date(high, as_date(values[0]))
        elif condition.operator in (">=", ">"):
            day = as_date(values[0]) + timedelta(days=1 if condition.operator == ">" else 0)
            low = max_date(low, day)
        elif condition.operator in ("<=", "<"):
            day = as_date(values[0]) - timedelta(days=1 if condition.operator == "<" else 0)
            high = min_date(high, day)
    if low is None or high is None:
        return None
    if low > high:
        raise QueryProblem("DATE_RANGE_TOO_NARROW", "Filters on date have a start date after the end date.")
    return low, high


def max_date(current: date | None, other: date) -> date:
    return other if current is None else max(current, other)


def min_date(current: date | None, other: date) -> date:
    return other if current is None else min(current, other)


def matches(row: dict, conditions: list[Condition]) -> bool:
    """Whether a flat row {field: value} passes every condition (segments.date ranges are applied by generation)."""
    for condition in conditions:
        if condition.operator == "DURING":
            continue
        value = row.get(condition.field)
        wanted = [normalise(value, candidate) for candidate in condition.values]
        operator = condition.operator
        if operator == "=" and value != wanted[0] or operator == "!=" and value == wanted[0]:
            return False
        if operator == "IN" and value not in wanted or operator == "NOT IN" and value in wanted:
            return False
        if operator == "BETWEEN" and not (compare(value, ">=", wanted[0]) and compare(value, "<=", wanted[1])):
            return False
        if operator in (">", ">=", "<", "<=") and not compare(value, operator, wanted[0]):
            return False
    return True


def normalise(value: object, candidate: object) -> object:
    """A literal in the type of the field's value (dates and ids are compared as they are stored)."""
    if isinstance(value, bool):
        return bool(candidate)
    if isinstance(value, int) and isinstance(candidate, str) and candidate.lstrip("-").isdigit():
        if len(candidate) > 30:
            raise QueryProblem("BAD_NUMBER", "Error in query: a number is too long.")
        return int(candidate)
    if isinstance(value, date):
        return as_date(candidate)
    return candidate


def compare(value: object, operator: str, other: object) -> bool:
    try:
        if operator == ">":
            return value > other
        if operator == ">=":
            return value >= other
        if operator == "<":
            return value < other
        return value <= other
    except TypeError:
        raise QueryProblem("BAD_VALUE", "Error in query: a value does not fit its field.") from None
