"""Our synthetic PII test set: generated positives per type (formatting variants included) in Korean sentences,
and sentences with ordinary numbers that must stay unchanged. Deterministic (fixed seeds)."""

from __future__ import annotations

import random
import string

from chathuman_hf.data.pii import luhn_ok

PER_TYPE = 100
TEMPLATES = ("{}로 연락 줘", "이거 {} 맞아?", "메모해 둬: {}", "{} 이야", "아까 말한 거 {}", "혹시 {}이거 기억나?",
             "{}", "적어놨어 ({}) ㅋㅋ", "그거 {} 아님?", "확인 부탁해요 {}.")  # fmt: skip


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _sep(rng: random.Random, choices: str = "-. ") -> str:
    return rng.choice([*choices, ""])


def resident(rng: random.Random, genders: str) -> str:
    date = f"{rng.randrange(100):02d}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    sep = rng.choice(["-", "", " - ", " "])
    return f"{date}{sep}{rng.choice(genders)}{_digits(rng, 6)}"


def phone(rng: random.Random) -> str:
    kind = rng.randrange(5)
    sep = _sep(rng)
    if kind == 0:  # mobile
        prefix = rng.choice(["010", "010", "011", "016", "017", "018", "019"])
        return f"{prefix}{sep}{_digits(rng, 4 if prefix == '010' else rng.choice([3, 4]))}{sep}{_digits(rng, 4)}"
    if kind == 1:  # Seoul, sometimes with parentheses
        head = rng.choice(["02", "(02) ", "02)"])
        return f"{head}{sep if head == '02' else ''}{_digits(rng, rng.choice([3, 4]))}{sep}{_digits(rng, 4)}"
    if kind == 2:  # other areas and 070
        area = rng.choice(["031", "032", "033", "041", "042", "051", "053", "055", "062", "064", "070"])
        return f"{area}{sep}{_digits(rng, rng.choice([3, 4]))}{sep}{_digits(rng, 4)}"
    if kind == 3:  # +82 forms
        national = rng.choice(["10", "2", "31", "70"])
        middle = _digits(rng, 4 if national == "10" else rng.choice([3, 4]))
        return rng.choice(["+82 ", "+82-", "+82", "+82 (0)"]) + f"{national}{sep}{middle}{sep}{_digits(rng, 4)}"
    return f"010{_digits(rng, 8)}"


def email(rng: random.Random) -> str:
    local = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randrange(3, 9)))
    local += rng.choice(["", ".kim", "_92", "+shop", str(rng.randrange(100))])
    domain = rng.choice(["naver.com", "gmail.com", "daum.net", "kakao.com", "hanmail.net", "company.co.kr"])
    return f"{local}@{domain}"


ACCOUNT_LAYOUTS = ((6, 2, 6), (3, 3, 6), (4, 3, 6), (3, 6, 5), (3, 4, 4, 2), (3, 6, 2, 3), (4, 2, 7), (4, 4, 4),
                   (3, 2, 6), (3, 2, 4, 3))  # fmt: skip


def account(rng: random.Random) -> str:
    layout = rng.choice(ACCOUNT_LAYOUTS)
    groups = [str(rng.randrange(1, 10)) + _digits(rng, layout[0] - 1)] + [_digits(rng, n) for n in layout[1:]]
    if rng.random() < 0.25:  # bare: 11, 12 or 14 digits (13 bare digits can read as a resident number)
        return str(rng.randrange(1, 10)) + _digits(rng, rng.choice([10, 11, 13]))
    return "-".join(groups)


def card(rng: random.Random) -> str:
    amex = rng.random() < 0.2
    body = (rng.choice(["34", "37"]) + _digits(rng, 13)) if amex else (rng.choice("4592") + _digits(rng, 15))
    for last in string.digits:
        if luhn_ok(body[:-1] + last):
            body = body[:-1] + last
            break
    sep = rng.choice(["-", " ", ""])
    groups = [body[:4], body[4:10], body[10:]] if amex else [body[i : i + 4] for i in range(0, 16, 4)]
    return sep.join(groups)


def passport(rng: random.Random) -> str:
    letter = rng.choice("MSRODG")
    value = letter + (_digits(rng, 8) if rng.random() < 0.5 else _digits(rng, 3) + rng.choice("ABCXYZ") + _digits(rng, 4))
    return value.lower() if rng.random() < 0.1 else value


def ipv4(rng: random.Random) -> str:
    return ".".join(str(n) for n in (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(256)))


def url(rng: random.Random) -> str:
    host = rng.choice(["shop.co.kr", "example.com", "blog.naver.com", "my-site.kr", "192.168.0.7:8080"])
    if rng.random() < 0.4:
        user = "".join(rng.choice(string.ascii_lowercase) for _ in range(5))
        return f"{rng.choice(['https', 'http', 'ftp'])}://{user}:{_digits(rng, 6)}@{host}/files"
    query = f"id={_digits(rng, 6)}&name={rng.choice(['kim', 'lee', 'park'])}"
    return rng.choice(["https://", "http://", "www."]) + f"{host}/order?{query}"


GENERATORS = {
    "resident_id": lambda rng: resident(rng, "1234"),
    "foreigner_id": lambda rng: resident(rng, "5678"),
    "phone": phone,
    "email": email,
    "bank_account": account,
    "card": card,
    "passport": passport,
    "ipv4": ipv4,
    "url": url,
}


def positives(kind: str, n: int = PER_TYPE, seed: int = 0) -> list[tuple[str, str]]:
    """``[(sentence, planted value)]`` for one type."""
    rng = random.Random(f"{kind}{seed}")
    return [(rng.choice(TEMPLATES).format(value), value) for value in (GENERATORS[kind](rng) for _ in range(n))]


ORDINARY = [
    "오늘 2024년 3월 1일이야", "2024-03-01에 만나자", "2024.03.15 금요일", "3/15 어때?", "20240301 로 저장했어",
    "오후 9:30에 봐", "02:30에 일어났어", "10시 15분 버스", "9시 반 출근", "23:59 마감",
    "15,000원이래", "1,000,000원 모았다", "3000000000원짜리 아파트", "만 오천 원", "커피 4500원", "₩12,800",
    "150000원 입금했어", "1인당 25,000원", "2만 5천원", "총 98,700원 나왔어",
    "사과 3개 샀어", "12명 왔어", "100번째 방문", "5번 봤어", "2층으로 와", "3번 출구", "1203호", "101동 1502호",
    "175cm 68kg", "키 182.5cm", "몸무게 54.3kg", "3.5km 걸었어", "500m 앞", "200g 넣어", "체온 36.5도",
    "버스 7016번", "간선 143번 타", "M6117 타면 돼", "9401번 광역버스", "마을버스 02번", "지하철 2호선",
    "3:2로 이겼어", "98점 받았다", "4-1 완승", "2대 1", "90/100점", "타율 0.315",
    "1988년생이야", "2023-2024 시즌", "1990~2000년대 노래", "올해 2025년", "95학번", "2002 월드컵",
    "버전 3.11.7로 올려", "v2.13.0 나왔대", "ios 17.4.1 업데이트", "파이썬 3.12", "v1.2.3.4 빌드", "크롬 122.0.6261.94",
    "1588-1234로 전화해봐", "119 불러", "112에 신고", "114 안내", "1544-0000", "우편번호 06236",
    "010 말고 다른 거", "02 지역번호", "031이 경기도야", "4111-1111-1111-1112 이건 틀린 번호래", "300.1.2.3 아님",
    "123-45는 짧아", "@민수 확인해줘", "a@b 이건 아니고", "https://naver.com 들어가봐", "www.daum.net 가봐",
    "50% 할인", "3.5배", "1.5L 생수", "0.5초 차이", "1/3만 먹어", "영하 5도", "습도 60%",
    "7시 30분 알람", "3박 4일 여행", "24시간 영업", "365일", "2주 뒤", "6개월 할부", "12개월 무이자",
    "100만 원 빌려줘", "월 250만원", "연봉 4,500만원", "1억 2천", "주식 30주", "1,234,567원 결제",
    "방 번호 302", "좌석 12A", "게이트 34번", "편명 KE123", "열차 1234호", "3번째 줄", "7080 노래",
    "2호선 강남역", "5호선 10번 출구", "국도 1번", "27인치 모니터", "256GB", "RTX 4090", "아이폰 15 프로",
    "에어팟 3세대", "갤럭시 S24", "1080p 영상", "60fps", "4K 화질", "3x3 큐브", "10-20분 걸려",
    "1시간 30분", "30분 뒤", "2-3일", "5-6명", "10~15분", "1+1 행사", "2+1이래",
]  # fmt: skip
